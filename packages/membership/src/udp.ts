/**
 * Membership over UDP: the proven `MembershipNode` driver on a `@spines-ts/node-host` `UdpHost`,
 * plus an optional `DiscoverySocket` for multicast/broadcast discovery. Nothing here runs the core
 * itself; this file only composes the shell. Imported as `@spines-ts/membership/udp` so that the
 * sans-IO package root never pulls in `node:dgram`.
 */
import { DiscoverySocket, type Endpoint, UdpHost } from "@spines-ts/node-host";
import { CapacityError, type Clock, type Logger, type NodeId } from "@spines-ts/primitives";
import { decodeHeader } from "@spines-ts/wire";
import type { MembershipCore } from "./core.ts";
import { MembershipNode, type MembershipNodeOptions } from "./driver.ts";
import type { Delivery, MembershipEvent, View, ViewId } from "./types.ts";

/** Where a peer listens. */
export interface UdpPeer {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

/** LAN discovery: heartbeats also go to a multicast group or a broadcast address. */
export interface UdpDiscovery {
  /** Multicast group (e.g. 239.255.42.99) or broadcast address (e.g. 192.168.1.255). */
  readonly address: string;
  /** The well-known port every member's discovery socket binds. */
  readonly port: number;
  /** Local interface address for multicast (e.g. 127.0.0.1 in tests). */
  readonly interface?: string;
  /** Multicast TTL (default 1: the LAN segment; 0 keeps it on this host). */
  readonly ttl?: number;
}

export type UdpMemberOptions = Omit<
  MembershipNodeOptions,
  "peers" | "announce" | "onAnnounce" | "autoJoin"
> & {
  readonly id: NodeId;
  /** Local address and port of the member's socket (default 127.0.0.1, a free port). */
  readonly bind?: { readonly host?: string; readonly port: number };
  readonly peers?: readonly UdpPeer[];
  readonly discovery?: UdpDiscovery;
  readonly log?: Logger;
  /** Default: the host's monotonic clock. */
  readonly clock?: Clock;
};

export interface UdpMemberEvents {
  view: [View];
  transitional: [ViewId];
  message: [Delivery];
  drain: [];
  left: [];
}

type Listener<K extends keyof UdpMemberEvents> = (...args: UdpMemberEvents[K]) => void;

/**
 * A membership member over UDP. Listeners run inside the event loop's packet and timer handlers: one
 * that throws is counted (`listenerErrors`) and logged, and the other listeners and events still
 * run; nothing a listener or a peer does takes the process down.
 *
 * ```ts
 * import { UdpMember } from "@spines-ts/membership/udp";
 * const m = await UdpMember.start({ id: 1, group: "web", bind: { port: 7001 },
 *   peers: [{ id: 2, host: "127.0.0.1", port: 7002 }] });
 * m.on("view", (v) => console.log(v.members));
 * m.on("message", (d) => console.log(d.sender, d.payload));
 * m.multicast(new TextEncoder().encode("hello"));
 * ```
 */
export class UdpMember {
  readonly host: UdpHost;
  readonly node: MembershipNode;
  readonly discovery: DiscoverySocket | undefined;
  /** Listeners that threw. */
  listenerErrors = 0;
  readonly #listeners = new Map<keyof UdpMemberEvents, ((...a: never[]) => void)[]>();
  #closing: Promise<void> | undefined;

  private constructor(host: UdpHost, discovery: DiscoverySocket | undefined, options: UdpMemberOptions) {
    this.host = host;
    this.discovery = discovery;
    const { bind: _b, peers, discovery: disc, clock: _c, log: _l, id: _i, auth, ...rest } = options;
    this.node = new MembershipNode(
      host,
      {
        ...rest,
        // the wall clock in microseconds: above every counter an earlier run of this member signed
        ...(auth ? { auth: { counterStart: Date.now() * 1000, ...auth } } : {}),
        peers: (peers ?? []).map((p) => p.id),
        announce: disc !== undefined,
        autoJoin: false,
        ...(discovery ? { onAnnounce: (data: Uint8Array) => discovery.announce(data) } : {}),
        ...(options.log ? { log: options.log } : {}),
      },
      (ev) => this.#dispatch(ev),
    );
  }

  /** Binds the socket(s) and joins the group. */
  static async start(options: UdpMemberOptions): Promise<UdpMember> {
    for (const p of options.peers ?? []) {
      if (typeof p.host !== "string" || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535)
        throw new RangeError(`peer ${p.id}: bad address ${p.host}:${p.port}`);
    }
    const host = await UdpHost.open({
      id: options.id,
      listen: { address: options.bind?.host ?? "127.0.0.1", port: options.bind?.port ?? 0 },
      peers: (options.peers ?? []).map((p) => [p.id, { address: p.host, port: p.port }] as const),
      ...(options.log ? { log: options.log } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    let disc: DiscoverySocket | undefined;
    try {
      const d = options.discovery;
      if (d !== undefined)
        disc = await DiscoverySocket.open({
          group: d.address,
          port: d.port,
          via: host,
          ...(d.interface !== undefined ? { interface: d.interface } : {}),
          ...(d.ttl !== undefined ? { ttl: d.ttl } : {}),
          ...(options.log ? { log: options.log } : {}),
        });
      const m = new UdpMember(host, disc, options);
      host.attach(m.node);
      // a datagram from an endpoint we do not know: a discovered peer, or one restarted on a new port
      host.onUnknownPeer = (data) => m.#learn(data);
      if (disc)
        disc.onMessage = (data, from) => {
          const id = m.#learn(data, from);
          if (id !== undefined) m.node.receive(id, data);
        };
      m.node.join();
      return m;
    } catch (e) {
      await disc?.close();
      await host.close();
      throw e;
    }
  }

  get core(): MembershipCore {
    return this.node.core;
  }

  /** The UDP port the member listens on. */
  get port(): number {
    return this.host.address().port;
  }

  get view(): View | undefined {
    return this.node.core.view;
  }

  on<K extends keyof UdpMemberEvents>(type: K, fn: Listener<K>): this {
    const l = this.#listeners.get(type) ?? [];
    l.push(fn as (...a: never[]) => void);
    this.#listeners.set(type, l);
    return this;
  }

  off<K extends keyof UdpMemberEvents>(type: K, fn: Listener<K>): this {
    const l = this.#listeners.get(type);
    const i = l?.indexOf(fn as (...a: never[]) => void) ?? -1;
    if (l && i >= 0) l.splice(i, 1);
    return this;
  }

  /** Multicasts in total order; false means "would block" (wait for `drain`). */
  multicast(payload: Uint8Array): boolean {
    return this.node.multicast(payload);
  }

  /** Leaves the group gracefully and closes the sockets. */
  async leave(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.node.core.joined) this.node.leave();
    // let the leave datagrams go out before closing
    await new Promise((r) => setImmediate(r));
    return this.close();
  }

  /** Closes the sockets without telling anyone (peers detect it by timeout). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.node.stop();
      await this.discovery?.close();
      await this.host.close();
    })();
    return this.#closing;
  }

  /** The member id in a membership datagram from an unknown endpoint (learned), or undefined. */
  #learn(data: Uint8Array, from?: Endpoint): NodeId | undefined {
    let sender: NodeId;
    try {
      sender = decodeHeader(data).sender;
    } catch {
      this.node.core.stats.badPackets++;
      return undefined;
    }
    if (sender === this.host.id) return undefined;
    // with auth, only a key holder's frame teaches a peer (the replay check follows in node.receive)
    if (this.node.auth !== undefined && !this.node.auth.isAuthentic(data)) return undefined;
    if (!this.node.core.addPeer(sender)) return undefined;
    if (from !== undefined) {
      const known = this.host.peer(sender);
      if (known === undefined || known.address !== from.address || known.port !== from.port) {
        try {
          this.host.setPeer(sender, from);
        } catch (e) {
          if (e instanceof CapacityError) return undefined;
          throw e;
        }
      }
    }
    return sender;
  }

  #dispatch(ev: MembershipEvent): void {
    if (ev.type === "view") this.#emit("view", ev.view);
    else if (ev.type === "transitional") this.#emit("transitional", ev.view);
    else if (ev.type === "message") this.#emit("message", ev.message);
    else if (ev.type === "drain") this.#emit("drain");
    else this.#emit("left");
  }

  #emit<K extends keyof UdpMemberEvents>(type: K, ...args: UdpMemberEvents[K]): void {
    const l = this.#listeners.get(type);
    if (l === undefined) return;
    for (const fn of [...l]) {
      try {
        (fn as Listener<K>)(...args);
      } catch (e) {
        this.listenerErrors++;
        this.host.log.warn({ event: type, err: String(e) }, "membership listener threw");
      }
    }
  }
}
