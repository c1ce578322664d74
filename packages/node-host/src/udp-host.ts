/**
 * A real `Host` over one `node:dgram` socket: the shell every spines-ts daemon runs its drivers on.
 * Nothing here is specific to Spines, so other daemons (wackamole-node) reuse it unchanged.
 *
 * - Peers are node ids mapped to `ip:port` endpoints; datagrams from an unknown endpoint go to
 *   `onUnknownPeer` (default: counted and dropped).
 * - Timers: one `TimerQueue` and a single `setTimeout` armed for its earliest deadline.
 * - Time: `systemClock` (monotonic) unless another clock is given.
 * - A program or hook that throws while handling a datagram or a timer never takes the process down:
 *   the error is counted and logged at debug, rate-limited, and the loop goes on.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv4 } from "node:net";
import {
  type Cancel,
  type Clock,
  type Host,
  type Logger,
  type NodeId,
  type NodeProgram,
  RateLimitedLog,
  Rng,
  silentLogger,
  systemClock,
  TimerQueue,
} from "@spines-ts/primitives";
import { canonicalAddress, type Endpoint, endpointKey, formatEndpoint } from "./endpoint.ts";

export interface UdpHostOptions {
  readonly id: NodeId;
  /** Address and port to bind; port 0 picks a free one (read it back with `address()`). */
  readonly listen: Endpoint;
  readonly peers?: Iterable<readonly [NodeId, Endpoint]>;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Seed for `rng`; default: random. */
  readonly seed?: number;
  /** Kernel socket buffer sizes in bytes (default: 4 MiB each; the kernel may clamp them). */
  readonly recvBufferBytes?: number;
  readonly sendBufferBytes?: number;
}

/** Counters kept by the host. Plain numbers so they can be exported as metrics. */
export interface UdpHostStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Datagrams from endpoints that are not a known peer. */
  rxUnknownPeer: number;
  /** Handlers that threw while processing a datagram. */
  rxHandlerErrors: number;
  /** `send` to a node id with no endpoint. */
  txNoPeer: number;
  /** Errors reported by the socket on send. */
  txErrors: number;
  /** Timer callbacks that threw. */
  timerErrors: number;
}

/** Receives datagrams from peers that are not in the peer table. */
export type UnknownPeerHandler = (data: Uint8Array, from: Endpoint) => void;

export class UdpHost implements Host {
  readonly id: NodeId;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  readonly stats: UdpHostStats = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    rxUnknownPeer: 0,
    rxHandlerErrors: 0,
    txNoPeer: 0,
    txErrors: 0,
    timerErrors: 0,
  };
  onUnknownPeer: UnknownPeerHandler | undefined;

  readonly #socket: Socket;
  readonly #v6: boolean;
  readonly #timers = new TimerQueue();
  readonly #peersById = new Map<NodeId, { ep: Endpoint; sendAddress: string }>();
  readonly #peersByKey = new Map<string, NodeId>();
  /**
   * Known peers by the address string as the socket reports it and port, filled on lookup hits only
   * (so bounded by the peers), cleared on every peer change: spares a canonical key string per datagram.
   */
  readonly #peersByRaw = new Map<string, Map<number, NodeId>>();
  readonly #rl: RateLimitedLog;
  #program: NodeProgram | undefined;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #closed = false;
  #firing = false;
  #bound: Endpoint;

  private constructor(opts: UdpHostOptions, socket: Socket, v6: boolean) {
    this.id = opts.id;
    this.clock = opts.clock ?? systemClock;
    this.rng = new Rng(opts.seed ?? (Math.random() * 0x1_0000_0000) >>> 0);
    this.log = opts.log ?? silentLogger;
    this.#rl = new RateLimitedLog(this.log, 1000, 5);
    this.#socket = socket;
    this.#v6 = v6;
    this.#bound = opts.listen;
    for (const [id, ep] of opts.peers ?? []) this.setPeer(id, ep);
  }

  /** Binds the socket and resolves once it is ready to send and receive. */
  static async open(opts: UdpHostOptions): Promise<UdpHost> {
    const v6 = !isIPv4(opts.listen.address);
    const socket = createSocket({
      type: v6 ? "udp6" : "udp4",
      ipv6Only: false,
      recvBufferSize: opts.recvBufferBytes ?? 4 << 20,
      sendBufferSize: opts.sendBufferBytes ?? 4 << 20,
    });
    const host = new UdpHost(opts, socket, v6);
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      socket.once("error", onError);
      socket.bind(opts.listen.port, opts.listen.address, () => {
        socket.off("error", onError);
        resolve();
      });
    });
    const a = socket.address();
    host.#bound = { address: a.address, port: a.port };
    socket.on("message", (msg, rinfo) => host.#onMessage(msg, rinfo));
    socket.on("error", (e) => {
      host.stats.txErrors++;
      host.#rl.debug(host.clock.now(), "socket-error", { err: e.message }, "udp socket error");
    });
    return host;
  }

  /** The bound address (with the real port when 0 was asked for). */
  address(): Endpoint {
    return this.#bound;
  }

  /** Starts delivering datagrams from known peers to `program`. */
  attach(program: NodeProgram): void {
    this.#program = program;
  }

  setPeer(id: NodeId, ep: Endpoint): void {
    this.removePeer(id);
    const addr = canonicalAddress(ep.address);
    const sendAddress = this.#v6 && isIPv4(addr) ? `::ffff:${addr}` : addr;
    this.#peersById.set(id, { ep: { address: addr, port: ep.port }, sendAddress });
    this.#peersByKey.set(endpointKey(addr, ep.port), id);
    this.#peersByRaw.clear();
  }

  removePeer(id: NodeId): void {
    const p = this.#peersById.get(id);
    if (p === undefined) return;
    this.#peersById.delete(id);
    this.#peersByKey.delete(endpointKey(p.ep.address, p.ep.port));
    this.#peersByRaw.clear();
  }

  #peerOf(address: string, port: number): NodeId | undefined {
    const byPort = this.#peersByRaw.get(address);
    const hit = byPort?.get(port);
    if (hit !== undefined) return hit;
    const id = this.#peersByKey.get(endpointKey(address, port));
    if (id !== undefined) {
      if (byPort === undefined) this.#peersByRaw.set(address, new Map([[port, id]]));
      else byPort.set(port, id);
    }
    return id;
  }

  peer(id: NodeId): Endpoint | undefined {
    return this.#peersById.get(id)?.ep;
  }

  peers(): [NodeId, Endpoint][] {
    return [...this.#peersById].map(([id, p]) => [id, p.ep]);
  }

  /** Sends to a peer, or to a raw endpoint (for discovery). Never throws for network reasons. */
  send(to: NodeId, data: Uint8Array): void {
    const p = this.#peersById.get(to);
    if (p === undefined) {
      this.stats.txNoPeer++;
      return;
    }
    this.#sendTo(p.sendAddress, p.ep.port, data, true);
  }

  /**
   * `send` without the defensive copy: the socket takes `data` as is and may hold it until the
   * kernel does, so the caller must never write to it again (a fresh `encode()` result qualifies;
   * an `encodeInto` view of a reused writer does not).
   */
  sendOwned(to: NodeId, data: Uint8Array): void {
    const p = this.#peersById.get(to);
    if (p === undefined) {
      this.stats.txNoPeer++;
      return;
    }
    this.#sendTo(p.sendAddress, p.ep.port, data, false);
  }

  sendToEndpoint(ep: Endpoint, data: Uint8Array): void {
    const addr = canonicalAddress(ep.address);
    this.#sendTo(this.#v6 && isIPv4(addr) ? `::ffff:${addr}` : addr, ep.port, data, true);
  }

  #sendTo(address: string, port: number, data: Uint8Array, copyFirst: boolean): void {
    if (this.#closed) return;
    // The socket may hold the buffer until the kernel takes it, and `send` callers may reuse their
    // encode buffers, so hand it a copy (`sendOwned` callers promise not to).
    let copy = data;
    if (copyFirst) {
      copy = Buffer.allocUnsafe(data.length);
      copy.set(data);
    }
    this.stats.txPackets++;
    this.stats.txBytes += data.length;
    try {
      // No per-send callback: a failed send arrives as a socket "error" event (counted there).
      this.#socket.send(copy, port, address);
    } catch (e) {
      this.stats.txErrors++;
      this.#rl.debug(
        this.clock.now(),
        "send-error",
        { err: (e as Error).message, address, port },
        "udp send failed",
      );
    }
  }

  schedule(at: number, fn: () => void): Cancel {
    const cancel = this.#timers.schedule(at, fn);
    if (at < this.#armedAt && !this.#firing) this.#arm();
    return cancel;
  }

  /** Pending timers (for status and tests). */
  get pendingTimers(): number {
    return this.#timers.pending;
  }

  #arm(): void {
    if (this.#closed) return;
    const next = this.#timers.nextDeadline();
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    if (next === undefined) {
      this.#armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    this.#armedAt = next;
    const delay = next - this.clock.now();
    if (delay < 1) {
      // setTimeout cannot wait less than 1 ms; pacing and delayed acks need finer steps. An
      // immediate runs after the pending I/O of this loop turn, so sockets are never starved.
      this.#immediate ??= setImmediate(this.#fireImmediate);
    } else {
      this.#timer = setTimeout(this.#fire, Math.floor(delay));
    }
  }

  readonly #fireImmediate = (): void => {
    this.#immediate = undefined;
    if (this.#armedAt - this.clock.now() >= 1 && this.#timer === undefined) {
      this.#arm();
      return;
    }
    this.#fire();
  };

  readonly #fire = (): void => {
    this.#timer = undefined;
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    this.#armedAt = Number.POSITIVE_INFINITY;
    this.#firing = true;
    // Run everything due; a throwing callback must not stop the others or kill the process.
    for (;;) {
      try {
        this.#timers.runDue(this.clock.now());
        break;
      } catch (e) {
        this.stats.timerErrors++;
        this.#rl.debug(this.clock.now(), "timer-error", { err: String(e) }, "timer callback threw");
      }
    }
    this.#firing = false;
    this.#arm();
  };

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    this.stats.rxPackets++;
    this.stats.rxBytes += msg.length;
    const from = this.#peerOf(rinfo.address, rinfo.port);
    try {
      if (from === undefined) {
        if (this.onUnknownPeer)
          this.onUnknownPeer(msg, { address: canonicalAddress(rinfo.address), port: rinfo.port });
        else {
          this.stats.rxUnknownPeer++;
          this.#rl.debug(
            this.clock.now(),
            "unknown-peer",
            { from: formatEndpoint({ address: canonicalAddress(rinfo.address), port: rinfo.port }) },
            "datagram from an unknown peer dropped",
          );
        }
        return;
      }
      this.#program?.receive(from, msg);
    } catch (e) {
      this.stats.rxHandlerErrors++;
      this.#rl.debug(
        this.clock.now(),
        "handler-error",
        { from, err: String(e) },
        "datagram handler threw; dropped",
      );
    }
  }

  /** Stops the program, cancels every timer and closes the socket. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#program?.stop?.();
    } catch (e) {
      this.log.warn({ err: String(e) }, "program stop threw");
    }
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    this.#timers.clear();
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }
}
