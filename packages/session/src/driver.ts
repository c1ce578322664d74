import { CoreDriver, type Host, type NodeId, type NodeProgram } from "@spines-ts/primitives";
import {
  decode,
  encode,
  type FrameSource,
  isSessionMessage,
  type SessionMessage,
  WireError,
} from "@spines-ts/wire";
import type { SessionConfig } from "./config.ts";
import {
  type ConnectOptions,
  type DatagramOptions,
  SessionEndpoint,
  type SessionEndpointOptions,
} from "./endpoint.ts";
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
  /** The transport's room for a flow (`SessionEndpointOptions.sendRoom`); default no limit. */
  readonly sendRoom?: SessionEndpointOptions["sendRoom"];
}

/**
 * Runs a `SessionEndpoint` on a `Host` (a netsim node or the daemon) with the shared `CoreDriver`
 * (docs/drivers.md): encodes its packets as frames and sends them to the next hop, feeds it
 * received frames, keeps one host timer armed for its earliest deadline, and hands its events to
 * `onEvent`. Application calls read the host clock.
 */
export class SessionDriver implements NodeProgram {
  readonly host: Host;
  readonly core: SessionEndpoint;
  route: (dst: NodeId) => NodeId | undefined;
  onEvent: ((e: SessionEvent, driver: SessionDriver) => void) | undefined;
  readonly #onOther: ((from: NodeId, bytes: Uint8Array) => void) | undefined;
  readonly #src: FrameSource;
  readonly #driver: CoreDriver;
  /** True while an application call's flush runs: its events wait for a host callback. */
  #deferEvents = false;
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
      ...(opts.sendRoom ? { sendRoom: opts.sendRoom } : {}),
    });
    this.route = opts.route ?? ((dst) => dst);
    this.onEvent = opts.onEvent;
    this.#onOther = opts.onOtherFrame;
    this.#src = { sender: host.id, incarnation: host.rng.uint32() };
    this.#driver = new CoreDriver(host, {
      drain: () => this.#drain(),
      nextDeadline: () => this.core.nextDeadline(),
      handleTimeout: (now) => this.core.handleTimeout(now),
    });
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
    this.#driver.stop();
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
    this.#driver.flush();
  }

  /** One drain pass: packets out, events queued, and dispatched unless an app call is flushing. */
  #drain(): boolean {
    let progress = false;
    for (const p of this.core.takePackets()) {
      progress = true;
      this.transmit(p);
    }
    for (const e of this.core.takeEvents()) {
      progress = true;
      this.#queue.push(e);
    }
    if (!this.#deferEvents) {
      for (;;) {
        const e = this.#queue.shift();
        if (e === undefined) break;
        progress = true;
        this.onEvent?.(e, this);
        for (const p of this.core.takePackets()) this.transmit(p);
        for (const ev of this.core.takeEvents()) this.#queue.push(ev);
      }
    } else if (this.#queue.length > 0 && !this.#dispatchScheduled) {
      this.#dispatchScheduled = true;
      this.host.schedule(this.now, () => {
        this.#dispatchScheduled = false;
        this.pump();
      });
    }
    return progress;
  }

  /** The transport has room again (`sendRoom`): streams send what they held back. */
  transportWritable(): void {
    if (this.#stopped) return;
    this.core.transportWritable(this.now);
    this.pump();
  }

  /** After an application call: packets now, events later (unless called from an event handler). */
  #afterCall(): void {
    if (this.#driver.flushing) {
      this.#driver.flush(); // re-entrant: the running flush dispatches the events
      return;
    }
    this.#deferEvents = true;
    try {
      this.#driver.flush();
    } finally {
      this.#deferEvents = false;
    }
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
