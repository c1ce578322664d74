import { CapacityError, type Rng, RttEstimator, unwrap32, wrap32 } from "@spines-ts/primitives";
import {
  DestKind,
  datagramFragmentCount,
  datagramFragmentLength,
  type LinkType,
  type OverlayHeader,
  type SessionDatagram,
  type SessionDatagramAck,
  SessionDatagramAckFlag,
  SessionDatagramFlag,
  type SessionMessage,
} from "@spines-ts/wire";
import type { SessionConfig } from "./config.ts";
import { DatagramTimeoutError, DatagramUnreachableError } from "./errors.ts";
import type { SessionEvent } from "./types.ts";

export interface DatagramContext {
  readonly nodeId: number;
  readonly config: SessionConfig;
  readonly rng: Rng;
  send(to: number, linkType: LinkType, msg: SessionMessage): void;
  emit(e: SessionEvent): void;
  isBound(port: number): boolean;
  /** A timed object's deadline may have changed. */
  schedule(t: Timed): void;
}

/** Anything with a deadline in the endpoint's timer heap. */
export interface Timed {
  deadline: number;
  onTimer(now: number): void;
}

export interface DatagramCounters {
  sent: number;
  delivered: number;
  duplicates: number;
  retransmittedFragments: number;
  reassemblyDropped: number;
  reassemblyExpired: number;
  unbound: number;
  flowTableFull: number;
}

class SendFlow {
  readonly key: string;
  readonly flowId: number;
  readonly srcPort: number;
  readonly dst: number;
  readonly dstPort: number;
  readonly reliable: boolean;
  nextMsgId = 0;
  readonly rtt: RttEstimator;
  readonly outstanding = new Map<number, OutMsg>();
  lastUsed: number;
  constructor(
    key: string,
    flowId: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    reliable: boolean,
    cfg: SessionConfig,
    now: number,
  ) {
    this.key = key;
    this.flowId = flowId;
    this.srcPort = srcPort;
    this.dst = dst;
    this.dstPort = dstPort;
    this.reliable = reliable;
    this.rtt = new RttEstimator({ initialMs: cfg.initialRtoMs, minMs: cfg.minRtoMs, maxMs: cfg.maxRtoMs });
    this.lastUsed = now;
  }
}

class OutMsg implements Timed {
  deadline = Number.POSITIVE_INFINITY;
  readonly id: number;
  readonly flow: SendFlow;
  readonly msgId: number;
  readonly data: Uint8Array;
  readonly count: number;
  readonly linkType: LinkType;
  readonly acked: Uint8Array;
  ackedCount = 0;
  firstSentAt: number;
  lastSentAt: number;
  transmissions = 0;
  backoff = 0;
  fastDone = false;
  done = false;
  readonly #svc: DatagramService;
  constructor(
    svc: DatagramService,
    id: number,
    flow: SendFlow,
    msgId: number,
    data: Uint8Array,
    count: number,
    linkType: LinkType,
    now: number,
  ) {
    this.#svc = svc;
    this.id = id;
    this.flow = flow;
    this.msgId = msgId;
    this.data = data;
    this.count = count;
    this.linkType = linkType;
    this.acked = new Uint8Array(count);
    this.firstSentAt = now;
    this.lastSentAt = now;
  }
  onTimer(now: number): void {
    this.#svc.onMsgTimer(now, this);
  }
}

class RecvFlow {
  /** Every message id below base was delivered or given up. */
  base: number;
  readonly delivered = new Set<number>();
  lastUsed: number;
  constructor(base: number, now: number) {
    this.base = base;
    this.lastUsed = now;
  }
}

class Partial implements Timed {
  deadline: number;
  readonly key: string;
  readonly flowKey: string;
  readonly msgId: number;
  readonly buf: Uint8Array;
  readonly have: Uint8Array;
  haveCount = 0;
  readonly count: number;
  readonly stride: number;
  readonly cost: number;
  done = false;
  readonly #svc: DatagramService;
  constructor(
    svc: DatagramService,
    key: string,
    flowKey: string,
    m: SessionDatagram,
    msgId: number,
    now: number,
  ) {
    this.#svc = svc;
    this.key = key;
    this.flowKey = flowKey;
    this.msgId = msgId;
    this.buf = new Uint8Array(m.totalLength);
    this.have = new Uint8Array(m.count);
    this.count = m.count;
    this.stride = m.stride;
    this.cost = m.totalLength + m.count + 64;
    this.deadline = now + svc.cfg.reassemblyTimeoutMs;
  }
  onTimer(now: number): void {
    this.#svc.onPartialTimer(now, this);
  }
}

/**
 * Best-effort and reliable datagrams: fragmentation up to 64 KiB, bounded reassembly, per-flow
 * message ids with a sliding dedup window (exactly-once for reliable, at-most-once for best-effort),
 * fragment bitmaps in acks and RTT-based retransmission of the missing fragments.
 */
export class DatagramService {
  readonly cfg: SessionConfig;
  readonly #ctx: DatagramContext;
  readonly #sendFlows = new Map<string, SendFlow>();
  readonly #sendFlowsById = new Map<number, SendFlow>();
  readonly #recvFlows = new Map<string, RecvFlow>();
  readonly #partials = new Map<string, Partial>();
  #reassemblyBytes = 0;
  #outstandingBytes = 0;
  #nextHandle = 1;
  #wantWritable = false;
  readonly counters: DatagramCounters = {
    sent: 0,
    delivered: 0,
    duplicates: 0,
    retransmittedFragments: 0,
    reassemblyDropped: 0,
    reassemblyExpired: 0,
    unbound: 0,
    flowTableFull: 0,
  };

  constructor(ctx: DatagramContext) {
    this.#ctx = ctx;
    this.cfg = ctx.config;
  }

  get reassemblyBytes(): number {
    return this.#reassemblyBytes;
  }

  get outstandingBytes(): number {
    return this.#outstandingBytes;
  }

  get partialCount(): number {
    return this.#partials.size;
  }

  // ------------------------------------------------------------------ sending

  /** Returns the message handle, or false when the reliable buffer is full (wait for datagramWritable). */
  send(
    now: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    data: Uint8Array,
    reliable: boolean,
    linkType: LinkType,
  ): number | false {
    const flow = this.#sendFlow(now, srcPort, dst, dstPort, reliable);
    flow.lastUsed = now;
    const stride = this.cfg.datagramFragmentBytes;
    const count = datagramFragmentCount(data.length, stride);
    const id = this.#nextHandle++;
    if (!reliable) {
      const msgId = flow.nextMsgId++;
      for (let i = 0; i < count; i++) this.#sendFragment(flow, msgId, data, i, count, linkType);
      this.counters.sent++;
      return id;
    }
    if (
      flow.outstanding.size >= this.cfg.maxOutstandingPerFlow ||
      this.#outstandingBytes + data.length > this.cfg.datagramSendBufferBytes
    ) {
      this.#wantWritable = true;
      return false;
    }
    const msgId = flow.nextMsgId++;
    const m = new OutMsg(this, id, flow, msgId, data.slice(), count, linkType, now);
    flow.outstanding.set(wrap32(msgId), m);
    this.#outstandingBytes += data.length;
    for (let i = 0; i < count; i++) this.#sendFragment(flow, msgId, m.data, i, count, linkType);
    m.transmissions = 1;
    m.deadline = now + flow.rtt.rto(0);
    this.#ctx.schedule(m);
    this.counters.sent++;
    return id;
  }

  #header(srcPort: number, dst: number, dstPort: number): OverlayHeader {
    return { src: this.#ctx.nodeId, srcPort, dst, dstPort, dstKind: DestKind.Node, ttl: this.cfg.ttl };
  }

  #sendFragment(
    flow: SendFlow,
    msgId: number,
    data: Uint8Array,
    index: number,
    count: number,
    linkType: LinkType,
  ): void {
    const stride = this.cfg.datagramFragmentBytes;
    const start = index * stride;
    this.#ctx.send(flow.dst, linkType, {
      _tag: "SessionDatagram",
      header: this.#header(flow.srcPort, flow.dst, flow.dstPort),
      flags: flow.reliable ? SessionDatagramFlag.Reliable : 0,
      flowId: flow.flowId,
      msgId: wrap32(msgId),
      totalLength: data.length,
      stride,
      index,
      count,
      payload: data.subarray(start, start + datagramFragmentLength(data.length, stride, index)),
    });
  }

  #sendFlow(now: number, srcPort: number, dst: number, dstPort: number, reliable: boolean): SendFlow {
    const key = `${srcPort}:${dst}:${dstPort}:${reliable ? 1 : 0}`;
    let f = this.#sendFlows.get(key);
    if (f !== undefined) return f;
    if (this.#sendFlows.size >= this.cfg.maxDatagramFlows) {
      let victim: SendFlow | undefined;
      for (const c of this.#sendFlows.values()) {
        if (c.outstanding.size === 0 && (victim === undefined || c.lastUsed < victim.lastUsed)) victim = c;
      }
      if (victim === undefined)
        throw new CapacityError("datagram send flow table", this.cfg.maxDatagramFlows);
      this.#sendFlows.delete(victim.key);
      this.#sendFlowsById.delete(victim.flowId);
    }
    let flowId = this.#ctx.rng.uint32();
    while (this.#sendFlowsById.has(flowId)) flowId = this.#ctx.rng.uint32();
    f = new SendFlow(key, flowId, srcPort, dst, dstPort, reliable, this.cfg, now);
    this.#sendFlows.set(key, f);
    this.#sendFlowsById.set(flowId, f);
    return f;
  }

  onMsgTimer(now: number, m: OutMsg): void {
    if (m.done) return;
    if (now - m.firstSentAt >= this.cfg.datagramTimeoutMs) {
      this.#finishMsg(m, new DatagramTimeoutError(m.flow.dst, m.flow.dstPort, this.cfg.datagramTimeoutMs));
      return;
    }
    m.backoff++;
    this.#retransmitMissing(now, m);
    m.fastDone = false;
    m.deadline = Math.min(now + m.flow.rtt.rto(m.backoff), m.firstSentAt + this.cfg.datagramTimeoutMs);
    this.#ctx.schedule(m);
  }

  #retransmitMissing(now: number, m: OutMsg): void {
    for (let i = 0; i < m.count; i++) {
      if (m.acked[i] === 1) continue;
      this.#sendFragment(m.flow, m.msgId, m.data, i, m.count, m.linkType);
      this.counters.retransmittedFragments++;
    }
    m.transmissions++;
    m.lastSentAt = now;
  }

  #finishMsg(m: OutMsg, error: DatagramTimeoutError | DatagramUnreachableError | undefined): void {
    m.done = true;
    m.deadline = Number.POSITIVE_INFINITY;
    m.flow.outstanding.delete(wrap32(m.msgId));
    this.#outstandingBytes -= m.data.length;
    if (error === undefined) this.#ctx.emit({ type: "datagramAcked", id: m.id });
    else this.#ctx.emit({ type: "datagramFailed", id: m.id, error });
    if (this.#wantWritable && this.#outstandingBytes <= this.cfg.datagramSendBufferBytes / 2) {
      this.#wantWritable = false;
      this.#ctx.emit({ type: "datagramWritable" });
    }
  }

  onAck(now: number, a: SessionDatagramAck): void {
    const flow = this.#sendFlowsById.get(a.flowId);
    if (flow === undefined || flow.dst !== a.header.src || flow.dstPort !== a.header.srcPort) return;
    const m = flow.outstanding.get(a.msgId);
    if (m === undefined || m.count !== a.count) return;
    if ((a.flags & SessionDatagramAckFlag.Refused) !== 0) {
      this.#finishMsg(m, new DatagramUnreachableError(flow.dst, flow.dstPort));
      return;
    }
    for (let i = 0; i < m.count; i++) {
      if (m.acked[i] === 1) continue;
      if ((((a.bitmap[i >> 3] as number) >> (7 - (i & 7))) & 1) === 1) {
        m.acked[i] = 1;
        m.ackedCount++;
      }
    }
    if (m.transmissions === 1) flow.rtt.sample(now - m.lastSentAt);
    if (m.ackedCount === m.count) {
      this.#finishMsg(m, undefined);
      return;
    }
    if (!m.fastDone) {
      // A partial ack answers our last fragment (or a duplicate): the holes are lost, resend them once.
      m.fastDone = true;
      this.#retransmitMissing(now, m);
    }
  }

  // ------------------------------------------------------------------ receiving

  onDatagram(now: number, d: SessionDatagram): void {
    const h = d.header;
    const reliable = (d.flags & SessionDatagramFlag.Reliable) !== 0;
    if (!this.#ctx.isBound(h.dstPort)) {
      this.counters.unbound++;
      if (reliable) this.#sendAck(d, SessionDatagramAckFlag.Refused, new Uint8Array(Math.ceil(d.count / 8)));
      return;
    }
    const flowKey = `${h.src}:${h.srcPort}:${d.flowId}:${reliable ? 1 : 0}`;
    let flow = this.#recvFlows.get(flowKey);
    if (flow === undefined) {
      if (this.#recvFlows.size >= this.cfg.maxDatagramFlows && !this.#evictRecvFlow(now)) {
        this.counters.flowTableFull++;
        return;
      }
      // A new flow starts its window just below the first id seen, so late lower ids still count.
      flow = new RecvFlow(Math.max(0, d.msgId - Math.floor(this.cfg.dedupWindow / 2)), now);
      this.#recvFlows.set(flowKey, flow);
    }
    flow.lastUsed = now;
    const msgId = unwrap32(d.msgId, flow.base);
    if (msgId < flow.base || flow.delivered.has(msgId)) {
      this.counters.duplicates++;
      if (reliable) this.#sendAck(d, 0, fullBitmap(d.count));
      return;
    }
    if (d.count === 1) {
      this.#deliver(now, flow, msgId, d, reliable, d.payload.slice());
      return;
    }
    const key = `${flowKey}:${msgId}`;
    let p = this.#partials.get(key);
    if (p === undefined) {
      const cost = d.totalLength + d.count + 64;
      if (this.#reassemblyBytes + cost > this.cfg.maxReassemblyBytes) {
        this.counters.reassemblyDropped++;
        return;
      }
      p = new Partial(this, key, flowKey, d, msgId, now);
      this.#partials.set(key, p);
      this.#reassemblyBytes += p.cost;
    } else if (p.count !== d.count || p.stride !== d.stride || p.buf.length !== d.totalLength) {
      return;
    }
    const dup = p.have[d.index] === 1;
    if (!dup) {
      p.have[d.index] = 1;
      p.haveCount++;
      p.buf.set(d.payload, d.index * d.stride);
      p.deadline = now + this.cfg.reassemblyTimeoutMs;
      this.#ctx.schedule(p);
    }
    if (p.haveCount === p.count) {
      this.#dropPartial(p);
      this.#deliver(now, flow, msgId, d, reliable, p.buf);
      return;
    }
    if (reliable && (dup || d.index === d.count - 1)) this.#sendAck(d, 0, packBitmap(p.have));
  }

  #deliver(
    now: number,
    flow: RecvFlow,
    msgId: number,
    d: SessionDatagram,
    reliable: boolean,
    data: Uint8Array,
  ): void {
    flow.delivered.add(msgId);
    const w = this.cfg.dedupWindow;
    if (msgId >= flow.base + w) {
      const newBase = msgId - w + 1;
      for (const id of flow.delivered) if (id < newBase) flow.delivered.delete(id);
      for (const p of this.#partials.values()) {
        if (p.flowKey === this.#flowKeyOf(d, reliable) && p.msgId < newBase) this.#dropPartial(p);
      }
      flow.base = newBase;
    }
    while (flow.delivered.has(flow.base)) {
      flow.delivered.delete(flow.base);
      flow.base++;
    }
    this.counters.delivered++;
    if (reliable) this.#sendAck(d, 0, fullBitmap(d.count));
    void now;
    this.#ctx.emit({
      type: "datagram",
      port: d.header.dstPort,
      src: d.header.src,
      srcPort: d.header.srcPort,
      reliable,
      data,
    });
  }

  #flowKeyOf(d: SessionDatagram, reliable: boolean): string {
    return `${d.header.src}:${d.header.srcPort}:${d.flowId}:${reliable ? 1 : 0}`;
  }

  #evictRecvFlow(now: number): boolean {
    let victim: string | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    for (const [k, f] of this.#recvFlows) {
      if (now - f.lastUsed >= this.cfg.datagramFlowIdleMs && f.lastUsed < oldest) {
        oldest = f.lastUsed;
        victim = k;
      }
    }
    if (victim === undefined) return false;
    this.#recvFlows.delete(victim);
    return true;
  }

  #dropPartial(p: Partial): void {
    if (p.done) return;
    p.done = true;
    p.deadline = Number.POSITIVE_INFINITY;
    this.#partials.delete(p.key);
    this.#reassemblyBytes -= p.cost;
  }

  onPartialTimer(now: number, p: Partial): void {
    if (p.done) return;
    void now;
    this.counters.reassemblyExpired++;
    this.#dropPartial(p);
  }

  #sendAck(d: SessionDatagram, flags: number, bitmap: Uint8Array): void {
    const h = d.header;
    this.#ctx.send(h.src, 0, {
      _tag: "SessionDatagramAck",
      header: {
        src: this.#ctx.nodeId,
        srcPort: h.dstPort,
        dst: h.src,
        dstPort: h.srcPort,
        dstKind: DestKind.Node,
        ttl: this.cfg.ttl,
      },
      flags,
      flowId: d.flowId,
      msgId: d.msgId,
      count: d.count,
      bitmap,
    });
  }
}

function fullBitmap(count: number): Uint8Array {
  const b = new Uint8Array(Math.ceil(count / 8)).fill(0xff);
  const spare = b.length * 8 - count;
  if (spare > 0) b[b.length - 1] = (0xff << spare) & 0xff;
  return b;
}

function packBitmap(have: Uint8Array): Uint8Array {
  const b = new Uint8Array(Math.ceil(have.length / 8));
  for (let i = 0; i < have.length; i++)
    if (have[i] === 1) b[i >> 3] = (b[i >> 3] as number) | (1 << (7 - (i & 7)));
  return b;
}
