import { randomInt } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { EventEmitter } from "node:events";
import { type Logger, type NodeId, silentLogger } from "@spines-ts/primitives";
import { systemClock } from "@spines-ts/primitives/system-clock";
import { decodeHeader } from "@spines-ts/wire";
import { MembershipCore } from "./core.ts";
import type { Delivery, MembershipConfig, View, ViewId } from "./types.ts";

/** Where a peer listens. */
export interface UdpPeer {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

/** LAN discovery: heartbeats also go to a multicast group or a broadcast address. */
export interface UdpDiscovery {
  readonly kind: "multicast" | "broadcast";
  /** Multicast group (e.g. 239.255.42.99) or broadcast address (e.g. 192.168.1.255). */
  readonly address: string;
  readonly port: number;
  /** Local interface address for multicast (e.g. 127.0.0.1 in tests). */
  readonly interface?: string;
  /** Multicast TTL (default 1: the LAN segment; 0 keeps it on this host). */
  readonly ttl?: number;
}

export type UdpMemberOptions = Omit<MembershipConfig, "id" | "incarnation" | "peers" | "announce" | "log"> & {
  readonly id: NodeId;
  /** Default: random. */
  readonly incarnation?: number;
  /** Local address and port of the member's socket. */
  readonly bind?: { readonly host?: string; readonly port: number };
  readonly peers?: readonly UdpPeer[];
  readonly discovery?: UdpDiscovery;
  readonly log?: Logger;
};

export interface UdpMemberEvents {
  view: [View];
  transitional: [ViewId];
  message: [Delivery];
  drain: [];
  left: [];
  error: [Error];
}

/**
 * A membership member over UDP (`node:dgram`): the shell around `MembershipCore`. Peers are a
 * configured list (id, host, port) plus anyone heard from; with `discovery`, heartbeats also go to
 * a multicast group or broadcast address, so members find each other on a LAN segment.
 *
 * ```ts
 * const m = await UdpMember.start({ id: 1, group: "web", bind: { port: 7001 },
 *   peers: [{ id: 2, host: "127.0.0.1", port: 7002 }] });
 * m.on("view", (v) => console.log(v.members));
 * m.on("message", (d) => console.log(d.sender, d.payload));
 * m.multicast(new TextEncoder().encode("hello"));
 * ```
 */
export class UdpMember extends EventEmitter<UdpMemberEvents> {
  readonly core: MembershipCore;
  readonly #socket: Socket;
  readonly #discovery: Socket | undefined;
  readonly #discoveryOpts: UdpDiscovery | undefined;
  readonly #addresses = new Map<NodeId, { host: string; port: number }>();
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #closed = false;

  private constructor(
    core: MembershipCore,
    socket: Socket,
    discovery: Socket | undefined,
    options: UdpMemberOptions,
  ) {
    super();
    this.core = core;
    this.#socket = socket;
    this.#discovery = discovery;
    this.#discoveryOpts = options.discovery;
    this.#log = options.log ?? silentLogger;
    for (const p of options.peers ?? []) this.#addresses.set(p.id, { host: p.host, port: p.port });
  }

  /** Binds the socket(s) and joins the group. */
  static async start(options: UdpMemberOptions): Promise<UdpMember> {
    const incarnation = options.incarnation ?? randomInt(1, 0xffffffff);
    const core = new MembershipCore({
      ...options,
      incarnation,
      peers: (options.peers ?? []).map((p) => p.id),
      announce: options.discovery !== undefined,
    });
    for (const p of options.peers ?? []) {
      if (typeof p.host !== "string" || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535)
        throw new RangeError(`peer ${p.id}: bad address ${p.host}:${p.port}`);
    }
    const socket = createSocket({ type: "udp4" });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(options.bind?.port ?? 0, options.bind?.host ?? "127.0.0.1", () => {
        socket.off("error", reject);
        resolve();
      });
    });
    let disc: Socket | undefined;
    const d = options.discovery;
    if (d !== undefined) {
      disc = createSocket({ type: "udp4", reuseAddr: true });
      const ds = disc;
      await new Promise<void>((resolve, reject) => {
        ds.once("error", reject);
        ds.bind(d.port, () => {
          ds.off("error", reject);
          resolve();
        });
      });
      if (d.kind === "multicast") {
        ds.addMembership(d.address, d.interface);
        socket.setMulticastTTL(d.ttl ?? 1);
        if (d.interface !== undefined) socket.setMulticastInterface(d.interface);
        socket.setMulticastLoopback(true);
      } else {
        socket.setBroadcast(true);
      }
    }
    const m = new UdpMember(core, socket, disc, options);
    socket.on("message", (msg, rinfo) => m.#onPacket(msg, rinfo));
    socket.on("error", (e) => m.emit("error", e));
    disc?.on("message", (msg, rinfo) => m.#onPacket(msg, rinfo));
    disc?.on("error", (e) => m.emit("error", e));
    core.join(systemClock.now());
    m.#flush();
    return m;
  }

  /** The UDP port the member listens on. */
  get port(): number {
    return this.#socket.address().port;
  }

  get view(): View | undefined {
    return this.core.view;
  }

  /** Multicasts in total order; false means "would block" (wait for `drain`). */
  multicast(payload: Uint8Array): boolean {
    const ok = this.core.multicast(payload, systemClock.now());
    this.#flush();
    return ok;
  }

  /** Leaves the group gracefully and closes the sockets. */
  async leave(): Promise<void> {
    if (this.#closed) return;
    this.core.leave(systemClock.now());
    this.#flush();
    // let the leave datagrams go out before closing
    await new Promise((r) => setImmediate(r));
    this.close();
  }

  /** Closes the sockets without telling anyone (peers detect it by timeout). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#socket.close();
    this.#discovery?.close();
  }

  #onPacket(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return;
    const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    let sender: number;
    try {
      sender = decodeHeader(bytes).sender;
    } catch {
      this.core.stats.badPackets++;
      return;
    }
    if (sender === this.core.id) return;
    if (!this.#addresses.has(sender) && this.#addresses.size < this.core.limits.maxPeers) {
      this.#addresses.set(sender, { host: rinfo.address, port: rinfo.port });
      this.core.addPeer(sender);
    } else {
      const a = this.#addresses.get(sender);
      if (a && (a.host !== rinfo.address || a.port !== rinfo.port)) {
        // a restarted peer may have a new port: trust the latest source of authenticated-enough frames
        a.host = rinfo.address;
        a.port = rinfo.port;
      }
    }
    this.core.receive(sender, bytes, systemClock.now());
    this.#flush();
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#closed) return;
    this.core.handleTimeout(systemClock.now());
    this.#flush();
  }

  #flush(): void {
    if (this.#closed) return;
    for (const t of this.core.drainTransmits()) {
      if (t.to === null) {
        const d = this.#discoveryOpts;
        if (d) this.#socket.send(t.data, d.port, d.address, (e) => e && this.#sendError(e));
        continue;
      }
      const a = this.#addresses.get(t.to);
      if (a) this.#socket.send(t.data, a.port, a.host, (e) => e && this.#sendError(e));
    }
    for (const ev of this.core.drainEvents()) {
      switch (ev.type) {
        case "view":
          this.emit("view", ev.view);
          break;
        case "transitional":
          this.emit("transitional", ev.view);
          break;
        case "message":
          this.emit("message", ev.message);
          break;
        case "drain":
          this.emit("drain");
          break;
        case "left":
          this.emit("left");
          break;
      }
    }
    const d = this.core.nextDeadline();
    if (d === undefined || this.#closed) return;
    if (d >= this.#timerAt && this.#timer !== undefined) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = d;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, d - systemClock.now()));
  }

  #sendError(e: Error): void {
    this.#log.debug({ err: e.message }, "membership: udp send failed");
  }
}
