/**
 * A real `Host` over one UDP socket: the shell every spines-ts daemon runs its drivers on.
 * Nothing here is specific to Spines, so other daemons (wackamole-node) reuse it unchanged.
 *
 * - The socket: batched (`BatchSocket`, the native addon: recvmmsg, sendmmsg and UDP GSO/GRO; the
 *   datagrams sent in one JS turn leave together at its end) when the addon is built, else
 *   `node:dgram` (one syscall per datagram). Option `io`, or `SPINES_UDP_IO=dgram|batch`.
 * - Peers are node ids mapped to `ip:port` endpoints (a bounded table); datagrams from an unknown
 *   endpoint go to `onUnknownPeer`, which may name the sender so the host learns it (default:
 *   counted and dropped).
 * - Timers: one `TimerQueue` and at most one real timer, armed for its earliest deadline. Nothing is
 *   armed for `schedule(Infinity)`; deadlines beyond setTimeout's 2^31-1 ms range are reached in
 *   clamped steps; a deadline less than 1 ms away gets one `setImmediate`, and if that wakes too
 *   early, a 1 ms timeout (never a loop of immediates), so a waiting daemon is idle.
 * - Time: `systemClock` (monotonic) unless another clock is given.
 * - A program, timer or hook that throws never takes the process down: the error is counted and
 *   logged at debug, rate-limited, and the loop goes on. Socket errors are counted and logged.
 */
import { createSocket, type Socket } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { isIP, isIPv4 } from "node:net";
import {
  type Cancel,
  CapacityError,
  type Clock,
  type Host,
  type Logger,
  type NodeId,
  type NodeProgram,
  RateLimitedLog,
  Rng,
  silentLogger,
  TimerQueue,
} from "@spines-ts/primitives";
import { systemClock } from "@spines-ts/primitives/system-clock";
import { BatchSocket, errnoName } from "./batch-socket.ts";
import { canonicalAddress, type Endpoint, endpointKey, formatEndpoint } from "./endpoint.ts";
import { monoMs, PreciseTimer } from "./precise-timer.ts";

/** The longest delay `setTimeout` takes; longer ones would fire after 1 ms. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

const noop: Cancel = () => {};

/** Families of the IP literals `literalLookup` has seen (bounded: cleared when full). */
const literalFamilies = new Map<string, number>();
const MAX_LITERALS = 1024;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The socket's address lookup. Node's default (`dns.lookup`) answers even an IP literal on the next
 * tick, so every datagram sent cost a tick and a parse of its address (issue 10); peers are IP
 * literals, answered here at once. Anything else still goes to `dns.lookup`.
 */
export function literalLookup(address: string, family: number, cb: LookupCallback): void {
  let f = literalFamilies.get(address);
  if (f === undefined) {
    f = isIP(address);
    if (f === 0) {
      dnsLookup(address, family, cb);
      return;
    }
    if (literalFamilies.size >= MAX_LITERALS) literalFamilies.clear();
    literalFamilies.set(address, f);
  }
  cb(null, address, f);
}

export interface UdpHostOptions {
  readonly id: NodeId;
  /** Address and port to bind; port 0 picks a free one (read it back with `address()`). */
  readonly listen: Endpoint;
  readonly peers?: Iterable<readonly [NodeId, Endpoint]>;
  /** Bound of the peer table (default 4096); `setPeer` of a new id beyond it throws `CapacityError`. */
  readonly maxPeers?: number;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Seed for `rng`; default: random. */
  readonly seed?: number;
  /** Kernel socket buffer sizes in bytes (default: 4 MiB each; the kernel may clamp them). */
  readonly recvBufferBytes?: number;
  readonly sendBufferBytes?: number;
  /**
   * Wait for deadlines with the process's sub-millisecond timer (`PreciseTimer`: one worker thread
   * for the whole process, whatever the number of hosts) instead of setTimeout's whole
   * milliseconds, which fire up to a millisecond late and cannot wait less than one (pacing,
   * delayed acks, loss probes). Default true; with false, and until the worker has started, the
   * setTimeout/setImmediate scheme of `#arm`.
   */
  readonly preciseTimer?: boolean;
  /**
   * The socket: "batch" (the native addon; throws if it is not built), "dgram" (node:dgram), or
   * "auto" (default: batch when the addon loaded). Without the option, the environment variable
   * `SPINES_UDP_IO` (`batch`, `dgram`, `auto`) decides.
   */
  readonly io?: UdpIo;
}

export type UdpIo = "auto" | "batch" | "dgram";

/** The `io` an option (or, without one, `SPINES_UDP_IO`) asks for; throws on a bad value. */
export function resolveUdpIo(io: UdpIo | undefined): "batch" | "dgram" {
  const want = io ?? (process.env.SPINES_UDP_IO as UdpIo | undefined) ?? "auto";
  if (want === "dgram") return "dgram";
  if (want === "batch") {
    if (!BatchSocket.available)
      throw new Error(`UdpHost: io "batch" unavailable: ${BatchSocket.unavailableReason}`);
    return "batch";
  }
  if (want === "auto") return BatchSocket.available ? "batch" : "dgram";
  throw new RangeError(`UdpHost: io must be auto, batch or dgram, got ${String(want)}`);
}

/** Counters kept by the host. Plain numbers so they can be exported as metrics. */
export interface UdpHostStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Datagrams from endpoints that are not a known peer (and that no `onUnknownPeer` claimed). */
  rxUnknownPeer: number;
  /** Peers learned through `onUnknownPeer`. */
  peersLearned: number;
  /** Peers `onUnknownPeer` named but the full peer table could not take. */
  peersRejected: number;
  /** Handlers (the program's `receive`, `onUnknownPeer`) that threw while processing a datagram. */
  rxHandlerErrors: number;
  /** `send` to a node id with no endpoint. */
  txNoPeer: number;
  /** `send`/`sendOwned`/`sendToEndpoint` after `close()` (dropped). */
  txAfterClose: number;
  /** Sends the socket refused, and socket "error" events. */
  txErrors: number;
  /** Timer callbacks that threw. */
  timerErrors: number;
  /** Times the real timer (or immediate) woke the host; idle with nothing due, this stays put. */
  timerWakeups: number;
  /** Batched socket only: receive callbacks (each delivering every datagram then waiting). */
  rxBatches: number;
  /** Batched socket only: received records the kernel had coalesced (UDP_GRO), cut apart here. */
  rxCoalesced: number;
  /** Batched socket only: send calls (each one sendmmsg for the datagrams of one turn). */
  txBatches: number;
  /** Batched socket only: datagrams dropped because the send queue was full (also in txErrors). */
  txQueueDrops: number;
}

/**
 * Receives datagrams from endpoints that are not in the peer table. Returning a node id makes the
 * host learn the peer (`setPeer(id, from)`, replacing that id's old endpoint) and deliver the
 * datagram to the program as coming from it; returning nothing drops it (not counted as unknown).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers written as `(d, ep) => void` stay valid
export type UnknownPeerHandler = (data: Uint8Array, from: Endpoint) => NodeId | undefined | void;

/** Lets `sendToEndpoint` reach a broadcast address or a multicast group. */
export interface GroupSendOptions {
  /** Allow sending to broadcast addresses (SO_BROADCAST). */
  readonly broadcast?: boolean;
  /** Multicast TTL / hop limit (default 1: this LAN segment). */
  readonly multicastTtl?: number;
  /** Outgoing interface for multicast: a local IPv4 address, or `::%ifname` for IPv6. */
  readonly multicastInterface?: string;
  /** Deliver our own multicasts to sockets on this machine too (default true). */
  readonly multicastLoopback?: boolean;
}

export class UdpHost implements Host {
  readonly id: NodeId;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  readonly maxPeers: number;
  readonly stats: UdpHostStats = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    rxUnknownPeer: 0,
    peersLearned: 0,
    peersRejected: 0,
    rxHandlerErrors: 0,
    txNoPeer: 0,
    txAfterClose: 0,
    txErrors: 0,
    timerErrors: 0,
    timerWakeups: 0,
    rxBatches: 0,
    rxCoalesced: 0,
    txBatches: 0,
    txQueueDrops: 0,
  };
  onUnknownPeer: UnknownPeerHandler | undefined;
  /**
   * Sees every datagram received (`tx` false, before the program) and sent (`tx` true) while set:
   * for packet traces (spines-node's `trace`). Must not keep or change `data`.
   */
  tap: ((tx: boolean, data: Uint8Array) => void) | undefined;

  /** Exactly one of the two is set. */
  readonly #socket: Socket | undefined;
  #batch: BatchSocket | undefined;
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
  /** When the armed timeout fires (host clock), while `#timer` is set. */
  #timerAt = 0;
  #immediate: NodeJS.Immediate | undefined;
  /** The sub-millisecond timer (undefined with `preciseTimer: false`). */
  readonly #precise: PreciseTimer | undefined;
  /** The deadline the real timer is armed for (Infinity: none). */
  #armedAt = Number.POSITIVE_INFINITY;
  #closed = false;
  #closing: Promise<void> | undefined;
  #firing = false;
  #bound: Endpoint;

  private constructor(opts: UdpHostOptions, socket: Socket | undefined, v6: boolean) {
    this.id = opts.id;
    this.clock = opts.clock ?? systemClock;
    this.#precise = opts.preciseTimer === false ? undefined : new PreciseTimer(() => this.#wake());
    this.rng = new Rng(opts.seed ?? (Math.random() * 0x1_0000_0000) >>> 0);
    this.log = opts.log ?? silentLogger;
    this.maxPeers = opts.maxPeers ?? 4096;
    if (!(Number.isInteger(this.maxPeers) && this.maxPeers > 0))
      throw new RangeError(`UdpHost: maxPeers must be a positive integer, got ${opts.maxPeers}`);
    this.#rl = new RateLimitedLog(this.log, 1000, 5);
    this.#socket = socket;
    this.#v6 = v6;
    this.#bound = opts.listen;
    for (const [id, ep] of opts.peers ?? []) this.setPeer(id, ep);
  }

  /** Binds the socket and resolves once it is ready to send and receive. */
  static async open(opts: UdpHostOptions): Promise<UdpHost> {
    const v6 = !isIPv4(opts.listen.address);
    if (resolveUdpIo(opts.io) === "batch") return UdpHost.#openBatch(opts, v6);
    const socket = createSocket({
      type: v6 ? "udp6" : "udp4",
      ipv6Only: false,
      recvBufferSize: opts.recvBufferBytes ?? 4 << 20,
      sendBufferSize: opts.sendBufferBytes ?? 4 << 20,
      lookup: literalLookup as never,
    });
    let host: UdpHost;
    try {
      host = new UdpHost(opts, socket, v6);
    } catch (e) {
      socket.close();
      throw e;
    }
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(opts.listen.port, opts.listen.address, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (e) {
      host.#closed = true;
      socket.close();
      throw e;
    }
    const a = socket.address();
    host.#bound = { address: a.address, port: a.port };
    socket.on("message", (msg, rinfo) => host.#onMessage(msg, rinfo.address, rinfo.port));
    socket.on("error", (e) => {
      host.stats.txErrors++;
      host.#rl.debug(host.clock.now(), "socket-error", { err: e.message }, "udp socket error");
    });
    return host;
  }

  static async #openBatch(opts: UdpHostOptions, v6: boolean): Promise<UdpHost> {
    const host = new UdpHost(opts, undefined, v6);
    try {
      host.#batch = BatchSocket.open({
        family: v6 ? 6 : 4,
        address: opts.listen.address,
        port: opts.listen.port,
        recvBufferBytes: opts.recvBufferBytes ?? 4 << 20,
        sendBufferBytes: opts.sendBufferBytes ?? 4 << 20,
        stats: host.stats,
        onDatagram: (d, address, port) => host.#onMessage(d, address, port),
        onSendError: (err) => {
          host.stats.txErrors++;
          host.#rl.debug(host.clock.now(), "send-error", { err }, "udp send failed");
        },
      });
    } catch (e) {
      host.#closed = true;
      host.#precise?.close();
      const err = e as NodeJS.ErrnoException;
      if (typeof err.errno === "number") {
        // the error a dgram bind gives: "bind EADDRINUSE 127.0.0.1:9000", with code and syscall
        const code = errnoName(err.errno);
        const ep = formatEndpoint(opts.listen);
        throw Object.assign(new Error(`${err.message.split(":")[0]} ${code} ${ep}`), {
          code,
          errno: -err.errno,
          syscall: err.message.split(":")[0],
        });
      }
      throw e;
    }
    host.#bound = host.#batch.address();
    return host;
  }

  /** "batch" (recvmmsg/sendmmsg/GSO through the native addon) or "dgram" (node:dgram). */
  get io(): "batch" | "dgram" {
    return this.#batch !== undefined ? "batch" : "dgram";
  }

  /** The bound address (with the real port when 0 was asked for). */
  address(): Endpoint {
    return this.#bound;
  }

  /** `udp6` (IPv6 or dual-stack) rather than `udp4`. */
  get ipv6(): boolean {
    return this.#v6;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Starts delivering datagrams from known peers to `program`. */
  attach(program: NodeProgram): void {
    this.#program = program;
  }

  /**
   * Maps `id` to `ep`, replacing the id's old endpoint and any other id that had `ep`. Throws
   * `CapacityError` when `id` is new and the table holds `maxPeers` peers.
   */
  setPeer(id: NodeId, ep: Endpoint): void {
    const addr = canonicalAddress(ep.address);
    const key = endpointKey(addr, ep.port);
    const other = this.#peersByKey.get(key);
    if (other !== undefined && other !== id) this.removePeer(other);
    if (!this.#peersById.has(id) && this.#peersById.size >= this.maxPeers)
      throw new CapacityError("UdpHost peer table", this.maxPeers);
    this.removePeer(id);
    const sendAddress = this.#v6 && isIPv4(addr) ? `::ffff:${addr}` : addr;
    this.#peersById.set(id, { ep: { address: addr, port: ep.port }, sendAddress });
    this.#peersByKey.set(key, id);
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

  /** The endpoint of a peer. */
  peer(id: NodeId): Endpoint | undefined {
    return this.#peersById.get(id)?.ep;
  }

  /** The node id at an endpoint (any spelling of the address). */
  peerAt(ep: Endpoint): NodeId | undefined {
    return this.#peersByKey.get(endpointKey(ep.address, ep.port));
  }

  peers(): [NodeId, Endpoint][] {
    return [...this.#peersById].map(([id, p]) => [id, p.ep]);
  }

  get peerCount(): number {
    return this.#peersById.size;
  }

  /** Sends to a peer. Never throws for network reasons; an unknown peer or a closed host is counted. */
  send(to: NodeId, data: Uint8Array): void {
    const p = this.#peersById.get(to);
    if (p === undefined) {
      if (this.#closed) this.stats.txAfterClose++;
      else this.stats.txNoPeer++;
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
      if (this.#closed) this.stats.txAfterClose++;
      else this.stats.txNoPeer++;
      return;
    }
    this.#sendTo(p.sendAddress, p.ep.port, data, false);
  }

  /**
   * Sends to a raw endpoint that need not be a peer (discovery, replies to unknown endpoints; a
   * broadcast or multicast address after `enableGroupSend`).
   */
  sendToEndpoint(ep: Endpoint, data: Uint8Array): void {
    const addr = canonicalAddress(ep.address);
    this.#sendTo(this.#v6 && isIPv4(addr) ? `::ffff:${addr}` : addr, ep.port, data, true);
  }

  /**
   * Configures the socket so `sendToEndpoint` can reach broadcast addresses or multicast groups;
   * receivers then see this host's unicast endpoint as the source (and can `setPeer` it).
   */
  enableGroupSend(opts: GroupSendOptions): void {
    if (this.#closed) return;
    const s = this.#batch ?? (this.#socket as Socket);
    if (opts.broadcast !== undefined) s.setBroadcast(opts.broadcast);
    if (opts.multicastTtl !== undefined) s.setMulticastTTL(opts.multicastTtl);
    if (opts.multicastInterface !== undefined) s.setMulticastInterface(opts.multicastInterface);
    s.setMulticastLoopback(opts.multicastLoopback ?? true);
  }

  #sendTo(address: string, port: number, data: Uint8Array, copyFirst: boolean): void {
    if (this.#closed) {
      this.stats.txAfterClose++;
      return;
    }
    // The socket may hold the buffer until the kernel takes it, and `send` callers may reuse their
    // encode buffers, so hand it a copy (`sendOwned` callers promise not to).
    let copy = data;
    if (copyFirst) {
      copy = Buffer.allocUnsafe(data.length);
      copy.set(data);
    }
    this.stats.txPackets++;
    this.stats.txBytes += data.length;
    this.tap?.(true, data);
    if (this.#batch !== undefined) {
      // leaves at the end of this turn with the others; refusals come back through onSendError
      this.#batch.send(copy, port, address);
      return;
    }
    try {
      // Without a callback Node drops most send errors (EMSGSIZE, ENETUNREACH, ...) silently; one
      // shared callback counts them without a closure per datagram.
      (this.#socket as Socket).send(copy, port, address, this.#onSent);
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

  readonly #onSent = (err: Error | null): void => {
    if (err === null) return;
    this.stats.txErrors++;
    this.#rl.debug(this.clock.now(), "send-error", { err: err.message }, "udp send failed");
  };

  /**
   * Calls `fn` at `at` on `clock`. `at` in the past runs on the next turn; `Infinity` never runs
   * and arms nothing; after `close()` nothing runs. Throws RangeError for NaN.
   */
  schedule(at: number, fn: () => void): Cancel {
    if (typeof at !== "number" || Number.isNaN(at)) throw new RangeError(`UdpHost.schedule: bad time ${at}`);
    if (typeof fn !== "function") throw new TypeError("UdpHost.schedule: fn must be a function");
    if (this.#closed || at === Number.POSITIVE_INFINITY) return noop;
    const cancel = this.#timers.schedule(at, fn);
    if (at < this.#armedAt && !this.#firing) this.#arm(false);
    return cancel;
  }

  /** Pending timers (for status and tests). */
  get pendingTimers(): number {
    return this.#timers.pending;
  }

  /** Whether a real timer or immediate is armed (for tests: false while only `Infinity` waits). */
  get timerArmed(): boolean {
    return (
      this.#timer !== undefined ||
      this.#immediate !== undefined ||
      (this.#precise !== undefined && this.#precise.at < Number.POSITIVE_INFINITY)
    );
  }

  /**
   * Arms the one real timer for the earliest deadline: an immediate when it is due now, else the
   * precise timer once it runs (exact, sub-millisecond). Without it: `afterIdleWake`: the host just
   * woke and found nothing due, so a sub-millisecond wait gets a 1 ms timeout instead of another
   * immediate.
   *
   * Lazy: a timeout already armed to fire no later than the deadline is kept (it wakes early, runs
   * nothing and arms again), and a deadline due now is served by an immediate beside it, so a busy
   * daemon whose deadlines keep moving (a delayed ack due now, then a retransmission timeout a few
   * ms ahead, once per event-loop turn) does not clear and create a timeout every turn (issue 10).
   */
  #arm(afterIdleWake: boolean): void {
    this.#armedAt = Number.POSITIVE_INFINITY;
    const next = this.#closed ? undefined : this.#timers.nextDeadline();
    if (next === undefined) {
      this.#clearTimeout();
      this.#clearImmediate();
      this.#precise?.arm(Number.POSITIVE_INFINITY);
      return;
    }
    this.#armedAt = next;
    const now = this.clock.now();
    const delay = next - now;
    if (delay > 0 && this.#precise !== undefined && PreciseTimer.ready) {
      this.#clearImmediate();
      this.#clearTimeout();
      // + 1 µs: the host clock must read the deadline when the timer fires
      this.#precise.arm(monoMs() + delay + 0.001);
      return;
    }
    this.#precise?.arm(Number.POSITIVE_INFINITY);
    if (delay <= 0 || (delay < 1 && !afterIdleWake)) {
      // setTimeout cannot wait less than 1 ms; pacing and delayed acks need finer steps. An
      // immediate runs after the pending I/O of this loop turn, so sockets are never starved.
      this.#immediate ??= setImmediate(this.#onImmediate);
      return;
    }
    this.#clearImmediate();
    const ms = Math.min(Math.max(1, Math.ceil(delay)), MAX_TIMER_DELAY_MS);
    const fireAt = now + ms;
    // A timeout that fires at most 1 ms early (a few ms early when the wait is long) stays: waking
    // early costs one empty wake-up, re-creating the timeout every turn cost more. It may also fire
    // up to 1 ms after the deadline, as a fresh one would (whole ms): compared with `fireAt`, the
    // sub-millisecond rounding of the two arms (and a pause between clock reads) re-created the
    // timeout now and then.
    if (
      this.#timer !== undefined &&
      this.#timerAt < next + 1 &&
      this.#timerAt >= fireAt - Math.max(1, ms / 4)
    )
      return;
    this.#clearTimeout();
    this.#timerAt = fireAt;
    this.#timer = setTimeout(this.#onTimeout, ms);
  }

  #clearTimeout(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #clearImmediate(): void {
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
  }

  readonly #onImmediate = (): void => {
    this.#immediate = undefined;
    this.#wake();
  };

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    this.#wake();
  };

  #wake(): void {
    this.stats.timerWakeups++;
    this.#armedAt = Number.POSITIVE_INFINITY;
    this.#firing = true;
    let ran = 0;
    // Run everything due; a throwing callback must not stop the others or kill the process.
    for (;;) {
      try {
        ran += this.#timers.runDue(this.clock.now());
        break;
      } catch (e) {
        ran++;
        this.stats.timerErrors++;
        this.#rl.debug(this.clock.now(), "timer-error", { err: String(e) }, "timer callback threw");
      }
    }
    this.#firing = false;
    this.#arm(ran === 0);
  }

  #onMessage(msg: Buffer, address: string, port: number): void {
    if (this.#closed) return;
    this.stats.rxPackets++;
    this.stats.rxBytes += msg.length;
    this.tap?.(false, msg);
    let from = this.#peerOf(address, port);
    try {
      if (from === undefined) {
        const ep = { address: canonicalAddress(address), port };
        if (this.onUnknownPeer === undefined) {
          this.stats.rxUnknownPeer++;
          this.#rl.debug(
            this.clock.now(),
            "unknown-peer",
            { from: formatEndpoint(ep) },
            "datagram from an unknown peer dropped",
          );
          return;
        }
        const id = this.onUnknownPeer(msg, ep);
        if (typeof id !== "number") return;
        try {
          this.setPeer(id, ep);
        } catch (e) {
          if (!(e instanceof CapacityError)) throw e;
          this.stats.peersRejected++;
          this.#rl.debug(this.clock.now(), "peer-table-full", { id }, "peer table full; datagram dropped");
          return;
        }
        this.stats.peersLearned++;
        from = id;
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
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    try {
      this.#program?.stop?.();
    } catch (e) {
      this.log.warn({ err: String(e) }, "program stop threw");
    }
    this.#closed = true;
    this.#arm(false);
    this.#timers.clear();
    const batch = this.#batch;
    if (batch !== undefined) {
      batch.close();
      // the descriptor closes on the next loop turn
      this.#closing = new Promise<void>((resolve) => setImmediate(resolve));
    } else {
      this.#closing = new Promise<void>((resolve) => (this.#socket as Socket).close(() => resolve()));
    }
    return this.#closing;
  }
}
