import type { Cancel, Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import {
  decode,
  encode,
  type FrameSource,
  isSessionMessage,
  type SessionMessage,
  WireError,
} from "@spines-ts/wire";
import type { SessionConfig } from "./config.ts";
import { type ConnectOptions, type DatagramOptions, SessionEndpoint } from "./endpoint.ts";
import type { OutPacket, SessionEvent } from "./types.ts";

export interface SessionDriverOptions {
  readonly config?: Partial<SessionConfig>;
  /**
   * The next hop toward an overlay destination; `undefined` drops the packet (no route). Defaults to
   * the destination itself (directly linked endpoints). The daemon replaces this with its routing.
   */
  readonly route?: (dst: NodeId) => NodeId | undefined;
  /** Called with every event, after the packets of the same step were handed to the host. */
  readonly onEvent?: (e: SessionEvent, driver: SessionDriver) => void;
  /**
   * Frames that are not session messages for this node (for example a transit packet, or another
   * family's message) go here; by default they are counted and dropped.
   */
  readonly onOtherFrame?: (from: NodeId, bytes: Uint8Array) => void;
}

/**
 * Runs a `SessionEndpoint` on a `Host` (a netsim node now, the daemon later): encodes its packets as
 * frames and sends them to the next hop, feeds it received frames, keeps one host timer armed for
 * its earliest deadline, and hands its events to `onEvent`. Application calls read the host clock.
 */
export class SessionDriver implements NodeProgram {
  readonly host: Host;
  readonly core: SessionEndpoint;
  route: (dst: NodeId) => NodeId | undefined;
  onEvent: ((e: SessionEvent, driver: SessionDriver) => void) | undefined;
  readonly #onOther: ((from: NodeId, bytes: Uint8Array) => void) | undefined;
  readonly #src: FrameSource;
  #timerAt = Number.POSITIVE_INFINITY;
  #cancel: Cancel | undefined;
  #pumping = false;
  #dispatchScheduled = false;
  readonly #queue: SessionEvent[] = [];
  #stopped = false;
  /** Packets with no route. */
  unroutable = 0;
  /** Frames that were not for this endpoint. */
  otherFrames = 0;

  constructor(host: Host, opts: SessionDriverOptions = {}) {
    this.host = host;
    this.core = new SessionEndpoint({
      nodeId: host.id,
      rng: host.rng.fork(0x5e55),
      ...(opts.config ? { config: opts.config } : {}),
    });
    this.route = opts.route ?? ((dst) => dst);
    this.onEvent = opts.onEvent;
    this.#onOther = opts.onOtherFrame;
    this.#src = { sender: host.id, incarnation: host.rng.uint32() };
  }

  /** Builds a netsim/daemon node factory: `sim.addNode(id, SessionDriver.factory({...}))`. */
  static factory(
    opts: SessionDriverOptions = {},
    init?: (d: SessionDriver) => void,
  ): (host: Host) => SessionDriver {
    return (host) => {
      const d = new SessionDriver(host, opts);
      init?.(d);
      d.pump();
      return d;
    };
  }

  get now(): number {
    return this.host.clock.now();
  }

  receive(from: NodeId, data: Uint8Array): void {
    if (this.#stopped) return;
    let msg: SessionMessage | undefined;
    try {
      const f = decode(data);
      if (isSessionMessage(f.msg) && f.msg.header.dst === this.host.id) msg = f.msg;
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.core.counters.malformed++;
      return;
    }
    if (msg === undefined) {
      this.otherFrames++;
      this.#onOther?.(from, data);
      return;
    }
    this.core.receive(this.now, msg);
    this.pump();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /** Sends one core packet toward its destination (used by pump; exposed for forwarding tests). */
  transmit(p: OutPacket): void {
    const hop = this.route(p.to);
    if (hop === undefined) {
      this.unroutable++;
      return;
    }
    this.host.send(hop, encode(this.#src, p.msg));
  }

  /**
   * Sends the core's packets, dispatches its events and re-arms the timer. Call after using `core`
   * directly. Events caused by an application call are not dispatched inside that call (the caller
   * has not seen its result yet): they go out from a host callback at the same instant.
   */
  pump(): void {
    this.#flush(true);
  }

  #flush(dispatch: boolean): void {
    if (this.#stopped) return;
    for (const p of this.core.takePackets()) this.transmit(p);
    for (const e of this.core.takeEvents()) this.#queue.push(e);
    if (dispatch && !this.#pumping) {
      this.#pumping = true;
      try {
        for (;;) {
          const e = this.#queue.shift();
          if (e === undefined) break;
          this.onEvent?.(e, this);
          for (const p of this.core.takePackets()) this.transmit(p);
          for (const ev of this.core.takeEvents()) this.#queue.push(ev);
        }
      } finally {
        this.#pumping = false;
      }
    } else if (this.#queue.length > 0 && !this.#pumping && !this.#dispatchScheduled) {
      this.#dispatchScheduled = true;
      this.host.schedule(this.now, () => {
        this.#dispatchScheduled = false;
        this.pump();
      });
    }
    this.#arm();
  }

  /** After an application call: packets now, events later. */
  #afterCall(): void {
    this.#flush(false);
  }

  #arm(): void {
    const d = this.core.nextDeadline();
    const at = d ?? Number.POSITIVE_INFINITY;
    if (at === this.#timerAt) return;
    this.#cancel?.();
    this.#cancel = undefined;
    this.#timerAt = at;
    if (d === undefined) return;
    this.#cancel = this.host.schedule(Math.max(d, this.now), () => {
      this.#cancel = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.core.handleTimeout(this.now);
      this.pump();
    });
  }

  // ---- application calls on the host clock

  listen(port: number, backlog?: number): void {
    this.core.listen(port, backlog);
  }
  connect(dst: NodeId, dstPort: number, opts?: ConnectOptions): number {
    const sid = this.core.connect(this.now, dst, dstPort, opts);
    this.#afterCall();
    return sid;
  }
  accept(port: number): number | undefined {
    return this.core.accept(port);
  }
  write(sid: number, bytes: Uint8Array): number {
    const n = this.core.write(this.now, sid, bytes);
    this.#afterCall();
    return n;
  }
  read(sid: number, max?: number): Uint8Array {
    const b = this.core.read(this.now, sid, max);
    this.#afterCall();
    return b;
  }
  shutdown(sid: number): void {
    this.core.shutdown(this.now, sid);
    this.#afterCall();
  }
  close(sid: number): void {
    this.core.close(this.now, sid);
    this.#afterCall();
  }
  reset(sid: number): void {
    this.core.reset(this.now, sid);
    this.#afterCall();
  }
  bind(port: number): void {
    this.core.bind(port);
  }
  sendDatagram(o: DatagramOptions): number | false {
    const r = this.core.sendDatagram(this.now, o);
    this.#afterCall();
    return r;
  }
}
