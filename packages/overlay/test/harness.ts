import type { LinkConfig } from "@spines-ts/link-arq";
import type { LinkParams, Simulator } from "@spines-ts/netsim";
import { type NodeId, Rng } from "@spines-ts/primitives";
import type { SessionConfig, SessionEvent } from "@spines-ts/session";
import { OverlayNode, type OverlayNodeOptions } from "../src/index.ts";

/** Deterministic test data, so any misplaced byte is detected. */
export function pattern(tag: number, length: number): Uint8Array {
  return new Rng(tag).bytes(length);
}

/** A link with 0–`maxLoss` loss, jitter, some reordering and duplication. */
export function randomLink(rng: Rng, maxLoss: number): LinkParams {
  const delayMs = rng.uniform(2, 15);
  return {
    delayMs,
    jitterMs: rng.uniform(0, delayMs / 2),
    loss: rng.uniform(0, maxLoss),
    reorder: rng.chance(0.3) ? rng.uniform(0, 0.05) : 0,
    reorderDelayMs: rng.uniform(1, 10),
    duplicate: rng.chance(0.3) ? rng.uniform(0, 0.02) : 0,
  };
}

/**
 * Fast timers for short virtual runs, and small buffers so back-pressure and the bounds are
 * exercised: links declare a silent neighbour dead after 300 ms.
 */
export const LINK: Partial<LinkConfig> = {
  helloIntervalMs: 50,
  deadTimeoutMs: 300,
  holdDownMs: 200,
  sendBufferPackets: 64,
  sendBufferBytes: 64 * 1400,
  perFlowPackets: 48,
  recvBufferPackets: 64,
  recvBufferBytes: 64 * 1400,
  recvWindowPackets: 256,
};

export const SESSION: Partial<SessionConfig> = {
  initialRtoMs: 200,
  minRtoMs: 50,
  maxRtoMs: 800,
  sendBufferBytes: 32 * 1024,
  receiveBufferBytes: 32 * 1024,
  keepaliveIntervalMs: 1000,
  deadPeerTimeoutMs: 30_000,
  connectTimeoutMs: 30_000,
  closeTimeoutMs: 30_000,
};

export const MAX_LOCAL_QUEUE = 64;

/** Largest RTO after back-off (the session's cap). */
export const MAX_RTO_MS = SESSION.maxRtoMs as number;
/** Link dead timeout. */
export const DEAD_MS = LINK.deadTimeoutMs as number;

/**
 * One side of a test stream on an OverlayNode: writes `out` in random chunks as fast as the send
 * buffer allows, then half-closes; reads everything and checks each byte as it arrives. Violations
 * are recorded (and reported by an invariant), never thrown from handlers.
 */
export class StreamSide {
  readonly out: Uint8Array;
  readonly expectIn: Uint8Array;
  readonly rng: Rng;
  sid: number | undefined = undefined;
  connected = false;
  written = 0;
  received = 0;
  ended = false;
  finSent = false;
  closedAt: number | undefined = undefined;
  closeError: unknown = undefined;
  violation: string | undefined = undefined;
  onBytes: ((side: StreamSide) => void) | undefined = undefined;

  constructor(out: Uint8Array, expectIn: Uint8Array, rng: Rng) {
    this.out = out;
    this.expectIn = expectIn;
    this.rng = rng;
  }

  get done(): boolean {
    return this.closedAt !== undefined;
  }

  pushWrites(n: OverlayNode): void {
    const sid = this.sid;
    if (sid === undefined || !this.connected || this.closedAt !== undefined) return;
    while (this.written < this.out.length) {
      const chunk = Math.min(this.out.length - this.written, 1 + this.rng.int(6000));
      const k = n.write(sid, this.out.subarray(this.written, this.written + chunk));
      this.written += k;
      if (k < chunk) return;
    }
    if (!this.finSent) {
      this.finSent = true;
      n.shutdown(sid);
    }
  }

  readAll(n: OverlayNode): void {
    const sid = this.sid;
    if (sid === undefined || this.closedAt !== undefined) return;
    for (;;) {
      const b = n.read(sid);
      if (b.length === 0) break;
      for (let i = 0; i < b.length; i++) {
        if (this.received >= this.expectIn.length) {
          this.violation ??= `received byte ${this.received} beyond the ${this.expectIn.length} sent`;
          return;
        }
        if (b[i] !== this.expectIn[this.received]) {
          this.violation ??= `byte ${this.received} wrong (got ${b[i]}, want ${this.expectIn[this.received]})`;
          return;
        }
        this.received++;
      }
      this.onBytes?.(this);
    }
  }

  onEvent(e: SessionEvent, n: OverlayNode): void {
    switch (e.type) {
      case "connected":
        this.connected = true;
        this.pushWrites(n);
        return;
      case "writable":
        this.pushWrites(n);
        return;
      case "readable":
        this.readAll(n);
        return;
      case "end":
        if (this.received !== this.expectIn.length)
          this.violation ??= `end after ${this.received} of ${this.expectIn.length} bytes`;
        this.ended = true;
        return;
      case "closed":
        this.closedAt = n.now;
        this.closeError = e.error;
        if (e.error !== undefined)
          this.violation ??= `session closed with ${e.error.code}: ${e.error.message}`;
        else if (this.received !== this.expectIn.length)
          this.violation ??= `closed after ${this.received} of ${this.expectIn.length} bytes`;
        return;
      default:
        return;
    }
  }
}

/** A stream between two endpoint nodes: the server listens on `port`, the client connects. */
export interface TestStream {
  readonly client: NodeId;
  readonly server: NodeId;
  readonly port: number;
  readonly linkType: 0 | 1 | 2;
  readonly c: StreamSide;
  readonly s: StreamSide;
}

export function makeStream(
  seed: number,
  k: number,
  client: NodeId,
  server: NodeId,
  bytesOut: number,
  bytesBack: number,
  linkType: 0 | 1 | 2,
): TestStream {
  const rng = new Rng(seed * 1000 + k);
  const up = pattern(seed * 1000 + k * 2 + 1, bytesOut);
  const down = pattern(seed * 1000 + k * 2 + 2, bytesBack);
  return {
    client,
    server,
    port: 100 + k,
    linkType,
    c: new StreamSide(up, down, rng.fork(1)),
    s: new StreamSide(down, up, rng.fork(2)),
  };
}

/**
 * Adds an OverlayNode for every id (neighbours from `edges`), with the streams' listeners and
 * event routing. Transit nodes run the same program (they just have no sessions).
 */
export function addOverlayNodes(
  sim: Simulator,
  ids: readonly NodeId[],
  edges: readonly (readonly [NodeId, NodeId])[],
  streams: readonly TestStream[],
  extra: Partial<OverlayNodeOptions> = {},
): void {
  for (const id of ids) {
    const neighbors = edges.flatMap(([a, b]) => (a === id ? [b] : b === id ? [a] : []));
    const bySid = new Map<number, StreamSide>();
    const byPort = new Map<number, TestStream>();
    for (const st of streams) if (st.server === id) byPort.set(st.port, st);
    sim.addNode(
      id,
      OverlayNode.factory(
        {
          neighbors,
          link: LINK,
          session: SESSION,
          maxLocalQueue: MAX_LOCAL_QUEUE,
          ...extra,
          onEvent: (e, n) => {
            if (e.type === "incoming") {
              const st = byPort.get(e.port);
              const sid = n.accept(e.port);
              if (st === undefined || sid === undefined) return;
              if (st.s.sid !== undefined) {
                const i = n.sessions.core.info(sid);
                st.s.violation ??= `a second session was accepted: ${JSON.stringify(i)} first done ${st.s.closedAt} at ${n.now}; client done ${st.c.closedAt}`;
                return;
              }
              st.s.sid = sid;
              st.s.connected = true;
              bySid.set(sid, st.s);
              st.s.pushWrites(n);
              return;
            }
            if ("sid" in e) {
              let side = bySid.get(e.sid);
              if (side === undefined) {
                for (const st of streams) if (st.client === id && st.c.sid === e.sid) side = st.c;
              }
              side?.onEvent(e, n);
            }
          },
        },
        (n) => {
          for (const st of streams) if (st.server === id) n.listen(st.port);
        },
      ),
    );
  }
}

/** Starts every stream's client at a random time in [0, withinMs). */
export function startStreams(
  sim: Simulator,
  rng: Rng,
  streams: readonly TestStream[],
  withinMs: number,
): void {
  for (const st of streams) {
    sim.at(rng.uniform(0, withinMs), (s) => {
      const n = s.program<OverlayNode>(st.client);
      if (n === undefined) return;
      st.c.sid = n.connect(st.server, st.port, { linkType: st.linkType });
    });
  }
}

/**
 * Invariants after every event: every stream's bytes arrive once, in order, unaltered, and no
 * session ends with an error; every queue and buffer of every node that is up stays within its
 * configured bound (plane queue, link send/receive buffers and held deliveries, real-time history,
 * router tables, session buffers and tables).
 */
export function addInvariants(sim: Simulator, ids: readonly NodeId[], streams: readonly TestStream[]): void {
  sim.addInvariant("stream bytes once and in order", () => {
    for (const st of streams) {
      if (st.c.violation !== undefined) return `stream ${st.client}->${st.server}: ${st.c.violation}`;
      if (st.s.violation !== undefined) return `stream ${st.server}->${st.client}: ${st.s.violation}`;
    }
    return undefined;
  });
  sim.addInvariant("bounded memory", () => {
    for (const id of ids) {
      const n = sim.program<OverlayNode>(id);
      if (n === undefined) continue;
      const err = memoryViolation(n);
      if (err !== undefined) return `node ${id}: ${err}`;
    }
    return undefined;
  });
}

export function memoryViolation(n: OverlayNode): string | undefined {
  const p = n.plane;
  if (p.localQueueLength > p.maxLocalQueue) return `local queue ${p.localQueueLength} > ${p.maxLocalQueue}`;
  for (const peer of p.driver.neighbours) {
    const l = p.driver.link(peer);
    if (l === undefined) continue;
    const c = l.config;
    if (l.reliable.bufferedPackets > c.sendBufferPackets)
      return `link ${peer}: send buffer ${l.reliable.bufferedPackets} packets > ${c.sendBufferPackets}`;
    if (l.reliable.bufferedBytes > c.sendBufferBytes)
      return `link ${peer}: send buffer ${l.reliable.bufferedBytes} bytes > ${c.sendBufferBytes}`;
    if (l.pendingDeliveries > c.recvBufferPackets)
      return `link ${peer}: ${l.pendingDeliveries} held deliveries > ${c.recvBufferPackets}`;
    const h = l.heldReliable;
    if (h.packets > c.recvBufferPackets || h.bytes > c.recvBufferBytes)
      return `link ${peer}: held reliable ${h.packets}/${h.bytes} over ${c.recvBufferPackets}/${c.recvBufferBytes}`;
    if (l.realtime.historyPackets > c.realtimeHistoryPackets)
      return `link ${peer}: real-time history ${l.realtime.historyPackets} > ${c.realtimeHistoryPackets}`;
  }
  const t = p.router.tableSizes();
  const lim = p.router.limits;
  if (t.origins > lim.maxOrigins || t.outbox > lim.maxOutbox || t.events > lim.maxEvents)
    return `router tables ${JSON.stringify(t)} over limits`;
  if (t.pending > lim.windowItems) return `router pending ${t.pending} > window ${lim.windowItems}`;
  const core = n.sessions.core;
  const cfg = core.config;
  if (core.sessionCount > cfg.maxSessions) return `sessions ${core.sessionCount} > ${cfg.maxSessions}`;
  for (const sid of core.sessionIds()) {
    const i = core.info(sid);
    if (i.sendBuffered > cfg.sendBufferBytes) return `session send buffer ${i.sendBuffered}`;
    if (i.unread + i.outOfOrderBytes > cfg.receiveBufferBytes)
      return `session receive buffer ${i.unread}+${i.outOfOrderBytes}`;
    if (i.outOfOrderSegments > cfg.maxOutOfOrderSegments) return `out-of-order ${i.outOfOrderSegments}`;
    if (i.inFlight > cfg.receiveBufferBytes) return `in flight ${i.inFlight}`;
  }
  return undefined;
}

/** Nodes reachable from `from` in the graph without the `down` nodes and edges. */
export function reachable(
  from: NodeId,
  edges: readonly (readonly [NodeId, NodeId])[],
  downNodes: ReadonlySet<NodeId>,
  downEdges: ReadonlySet<string>,
): Set<NodeId> {
  const seen = new Set<NodeId>([from]);
  const stack = [from];
  while (stack.length > 0) {
    const x = stack.pop() as NodeId;
    for (const [a, b] of edges) {
      if (downEdges.has(edgeKey(a, b))) continue;
      const y = a === x ? b : b === x ? a : undefined;
      if (y === undefined || seen.has(y) || downNodes.has(y)) continue;
      seen.add(y);
      stack.push(y);
    }
  }
  return seen;
}

export function edgeKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/**
 * Event-loop lag of a real daemon (issue 10, packages/overlay/test/latency-path.netsim.test.ts):
 * on a loaded machine a daemon's process now and then waits for a core, its event loop frozen,
 * while packets and timers queue; afterwards it handles them in order at once. Modelled with
 * netsim's node stall (`Simulator.stall`, drawn by `randomFaults` kind "stall"): every node is
 * frozen at exponential intervals (mean `meanIntervalMs` per node) for an exponential time (mean
 * `meanStallMs`). `timerLateMs` is for the caller's links: the emulation's timers fire up to
 * 2 × `timerLateMs` late (uniform), i.e. delay + timerLateMs ± timerLateMs.
 */
export interface EventLoopLag {
  readonly meanIntervalMs: number;
  readonly meanStallMs: number;
  readonly timerLateMs: number;
}

/** Schedules the stalls of `lag` on `ids` from now until `until` (virtual ms). */
export function addEventLoopLag(
  sim: Simulator,
  ids: readonly NodeId[],
  lag: EventLoopLag,
  until: number,
): void {
  // One schedule picking a node uniformly at n times the per-node rate is the same as an
  // independent Poisson schedule per node (superposition).
  sim.randomFaults({
    kinds: ["stall"],
    nodes: ids,
    until,
    meanIntervalMs: lag.meanIntervalMs / ids.length,
    meanDurationMs: lag.meanStallMs,
  });
}

/**
 * Splits a stream's bytes into fixed-size records that start with a u32 sequence number (the
 * probe format of the latency tests) and calls `each` with every complete record's sequence.
 */
export class RecordReader {
  #buf = new Uint8Array(0);
  readonly size: number;
  constructor(size: number) {
    this.size = size;
  }

  push(b: Uint8Array, each: (seq: number) => void): void {
    const joined = new Uint8Array(this.#buf.length + b.length);
    joined.set(this.#buf);
    joined.set(b, this.#buf.length);
    let off = 0;
    for (; joined.length - off >= this.size; off += this.size)
      each(new DataView(joined.buffer, off).getUint32(0));
    this.#buf = joined.slice(off);
  }
}
