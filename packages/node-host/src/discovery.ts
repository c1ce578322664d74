/**
 * LAN discovery: a UDP socket on a well-known port that joins a multicast group (or listens for
 * broadcasts) and hands every announcement it hears to `onMessage` with the sender's endpoint.
 * What an announcement says is the caller's business (membership puts its node id in it and maps
 * the sender's endpoint to that id with `UdpHost.setPeer`).
 *
 * Announcements go out of the discovery socket itself, or, with `via`, out of a `UdpHost`'s socket,
 * so receivers see the host's unicast endpoint as the source and can reply to it directly.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIP, isIPv4 } from "node:net";
import { type Clock, type Logger, RateLimitedLog, silentLogger } from "@spines-ts/primitives";
import { systemClock } from "@spines-ts/primitives/system-clock";
import { canonicalAddress, type Endpoint, formatEndpoint } from "./endpoint.ts";
import type { UdpHost } from "./udp-host.ts";

export interface DiscoveryOptions {
  /**
   * A multicast group (224.0.0.0/4 or ff00::/8, e.g. 239.255.42.99) or a broadcast address (e.g.
   * 192.168.1.255, 255.255.255.255, 127.255.255.255).
   */
  readonly group: string;
  /** The well-known port every member binds (shared: the socket sets SO_REUSEADDR). */
  readonly port: number;
  /**
   * Local interface: for multicast, the address whose interface joins the group and sends (IPv4:
   * e.g. 127.0.0.1; IPv6: `::%eth0`); default: the kernel's choice.
   */
  readonly interface?: string;
  /** Also deliver our own multicasts to sockets on this machine (IP_MULTICAST_LOOP). Default true. */
  readonly loopback?: boolean;
  /** Multicast TTL / hop limit. Default 1: this LAN segment only. */
  readonly ttl?: number;
  /** Address the socket binds (default: the wildcard of the group's family, needed for broadcast). */
  readonly bindAddress?: string;
  /** Send announcements out of this host's socket instead of the discovery socket (same IP family as `group`). */
  readonly via?: UdpHost;
  /** Larger announcements are dropped on send and on receive (default 1400 bytes). */
  readonly maxBytes?: number;
  readonly log?: Logger;
  readonly clock?: Clock;
}

/** Counters of a discovery socket. */
export interface DiscoveryStats {
  rxPackets: number;
  rxBytes: number;
  /** Announcements above `maxBytes` dropped on receive. */
  rxTooBig: number;
  /** `onMessage` calls that threw. */
  rxHandlerErrors: number;
  txPackets: number;
  txBytes: number;
  /** Announcements above `maxBytes` refused on send. */
  txTooBig: number;
  /** Sends the socket refused, and socket "error" events. */
  txErrors: number;
  /** `announce` after `close()`. */
  txAfterClose: number;
}

const MULTICAST_V4 = /^2(2[4-9]|3\d)\./;

/** Whether `address` is an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address. */
export function isMulticastAddress(address: string): boolean {
  const a = address.toLowerCase();
  if (isIPv4(a)) return MULTICAST_V4.test(a);
  return isIP(a) === 6 && a.startsWith("ff");
}

export class DiscoverySocket {
  readonly kind: "multicast" | "broadcast";
  /** Where announcements go: the group (or broadcast address) and the port. */
  readonly target: Endpoint;
  readonly maxBytes: number;
  readonly stats: DiscoveryStats = {
    rxPackets: 0,
    rxBytes: 0,
    rxTooBig: 0,
    rxHandlerErrors: 0,
    txPackets: 0,
    txBytes: 0,
    txTooBig: 0,
    txErrors: 0,
    txAfterClose: 0,
  };
  /** Receives every announcement heard (our own too, when `loopback` is on). */
  onMessage: ((data: Uint8Array, from: Endpoint) => void) | undefined;

  readonly #socket: Socket;
  readonly #via: UdpHost | undefined;
  readonly #clock: Clock;
  readonly #rl: RateLimitedLog;
  #closing: Promise<void> | undefined;

  private constructor(opts: DiscoveryOptions, socket: Socket, kind: "multicast" | "broadcast") {
    this.kind = kind;
    this.target = { address: canonicalAddress(opts.group), port: opts.port };
    this.maxBytes = opts.maxBytes ?? 1400;
    this.#socket = socket;
    this.#via = opts.via;
    this.#clock = opts.clock ?? systemClock;
    this.#rl = new RateLimitedLog(opts.log ?? silentLogger, 1000, 5);
  }

  /** Binds the well-known port, joins the group (multicast) and resolves when ready. */
  static async open(opts: DiscoveryOptions): Promise<DiscoverySocket> {
    const family = isIP(opts.group);
    if (family === 0)
      throw new RangeError(`DiscoverySocket: group ${JSON.stringify(opts.group)} is not an IP address`);
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535)
      throw new RangeError(`DiscoverySocket: port must be 1..65535, got ${opts.port}`);
    const maxBytes = opts.maxBytes ?? 1400;
    if (!(Number.isInteger(maxBytes) && maxBytes > 0 && maxBytes <= 65507))
      throw new RangeError(`DiscoverySocket: maxBytes must be 1..65507, got ${maxBytes}`);
    const kind = isMulticastAddress(opts.group) ? "multicast" : "broadcast";
    if (kind === "broadcast" && family === 6)
      throw new RangeError("DiscoverySocket: IPv6 has no broadcast; use a multicast group (ff02::/16)");
    if (opts.via !== undefined && opts.via.ipv6 !== (family === 6))
      throw new RangeError(
        `DiscoverySocket: via host is ${opts.via.ipv6 ? "IPv6" : "IPv4"} but group ${opts.group} is not; use a host of the group's family`,
      );
    const socket = createSocket({ type: family === 6 ? "udp6" : "udp4", reuseAddr: true });
    const d = new DiscoverySocket(opts, socket, kind);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(opts.port, opts.bindAddress ?? (family === 6 ? "::" : "0.0.0.0"), () => {
          socket.off("error", reject);
          resolve();
        });
      });
      const groupOpts = {
        multicastTtl: opts.ttl ?? 1,
        multicastLoopback: opts.loopback ?? true,
        ...(opts.interface !== undefined ? { multicastInterface: opts.interface } : {}),
      };
      if (kind === "multicast") {
        socket.addMembership(opts.group, opts.interface);
        socket.setMulticastTTL(groupOpts.multicastTtl);
        socket.setMulticastLoopback(groupOpts.multicastLoopback);
        if (opts.interface !== undefined) socket.setMulticastInterface(opts.interface);
        opts.via?.enableGroupSend(groupOpts);
      } else {
        socket.setBroadcast(true);
        opts.via?.enableGroupSend({ broadcast: true });
      }
    } catch (e) {
      socket.close();
      throw e;
    }
    socket.on("message", (msg, rinfo) => d.#onMessage(msg, rinfo));
    socket.on("error", (e) => {
      d.stats.txErrors++;
      d.#rl.debug(d.#clock.now(), "socket-error", { err: e.message }, "discovery socket error");
    });
    return d;
  }

  /** The discovery socket's own address (the well-known port). */
  address(): Endpoint {
    const a = this.#socket.address();
    return { address: a.address, port: a.port };
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Sends one announcement to the group; never throws for network reasons (failures are counted). */
  announce(data: Uint8Array): void {
    if (this.#closing !== undefined) {
      this.stats.txAfterClose++;
      return;
    }
    if (data.length > this.maxBytes) {
      this.stats.txTooBig++;
      return;
    }
    this.stats.txPackets++;
    this.stats.txBytes += data.length;
    if (this.#via !== undefined) {
      this.#via.sendToEndpoint(this.target, data);
      return;
    }
    const copy = Buffer.allocUnsafe(data.length);
    copy.set(data);
    try {
      this.#socket.send(copy, this.target.port, this.target.address, this.#onSent);
    } catch (e) {
      this.#onSent(e as Error);
    }
  }

  readonly #onSent = (err: Error | null): void => {
    if (err === null) return;
    this.stats.txErrors++;
    this.#rl.debug(this.#clock.now(), "send-error", { err: err.message }, "discovery send failed");
  };

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#closing !== undefined) return;
    this.stats.rxPackets++;
    this.stats.rxBytes += msg.length;
    if (msg.length > this.maxBytes) {
      this.stats.rxTooBig++;
      return;
    }
    const from = { address: canonicalAddress(rinfo.address), port: rinfo.port };
    try {
      this.onMessage?.(msg, from);
    } catch (e) {
      this.stats.rxHandlerErrors++;
      this.#rl.debug(
        this.#clock.now(),
        "handler-error",
        { from: formatEndpoint(from), err: String(e) },
        "discovery handler threw; dropped",
      );
    }
  }

  /** Leaves the group and closes the socket. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = new Promise<void>((resolve) => this.#socket.close(() => resolve()));
    return this.#closing;
  }
}
