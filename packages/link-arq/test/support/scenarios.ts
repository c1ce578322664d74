/**
 * Netsim scenarios shared by the tests (many short seeds) and `pnpm bench links` (large samples).
 * Every node runs the real `Link` cores through `LinkDriver`; invariants are checked by the
 * simulator after every event.
 */
import { type LinkParams, Simulator } from "@spines-ts/netsim";
import { type Host, type NodeId, type NodeProgram, Rng } from "@spines-ts/primitives";
import { DestKind, LinkChannel, type OverlayHeader } from "@spines-ts/wire";
import {
  type Delivery,
  type Link,
  type LinkConfig,
  LinkDriver,
  type LinkEvent,
  SendResult,
} from "../../src/index.ts";
import { RenoReceiver, RenoSender, unwrap, wrap } from "./reno.ts";

export const header = (flow = 0): OverlayHeader => ({
  src: 1,
  srcPort: flow,
  dst: 9,
  dstPort: flow,
  dstKind: DestKind.Node,
  ttl: 16,
});

function payloadOf(id: number, size: number, sentAt: number): Uint8Array {
  const b = new Uint8Array(Math.max(12, size));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, id);
  dv.setFloat64(4, sentAt);
  return b;
}
function idOf(d: Delivery): number {
  return new DataView(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength).getUint32(0);
}
function sentAtOf(d: Delivery): number {
  return new DataView(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength).getFloat64(4);
}

/** Random adverse link conditions: loss 0–maxLoss (independent or bursty), delay 1–100 ms, jitter, reordering, duplication. */
export function adverseParams(
  rng: Rng,
  maxLoss = 0.2,
  forceBursty?: boolean,
): { params: LinkParams; bursty: boolean; loss: number } {
  const delayMs = rng.uniform(1, 100);
  const loss = rng.uniform(0, maxLoss);
  const coin = rng.chance(0.5);
  const bursty = forceBursty ?? coin;
  const params: LinkParams = {
    delayMs,
    jitterMs: rng.uniform(0, delayMs / 2),
    reorder: rng.uniform(0, 0.05),
    reorderDelayMs: rng.uniform(1, 20),
    duplicate: rng.uniform(0, 0.05),
  };
  if (bursty) {
    // Mean bad run 1.4–3.3 packets; stationary loss = pGB / (pGB + pBG) = loss.
    const pBadToGood = rng.uniform(0.3, 0.7);
    const pGoodToBad = (loss * pBadToGood) / (1 - loss);
    return {
      params: { ...params, gilbertElliott: { pGoodToBad, pBadToGood, lossGood: 0, lossBad: 1 } },
      bursty,
      loss,
    };
  }
  return { params: { ...params, loss }, bursty, loss };
}

/** A node whose only job is to run links, with hooks for the scenario. */
export class LinkNode implements NodeProgram {
  readonly driver: LinkDriver;
  readonly host: Host;
  constructor(
    host: Host,
    opts: {
      config?: Partial<LinkConfig>;
      onEvent?: (peer: NodeId, e: LinkEvent) => void;
      onDelivery?: (peer: NodeId, d: Delivery) => boolean;
      transmit?: (peer: NodeId, b: Uint8Array) => void;
    },
  ) {
    this.host = host;
    this.driver = new LinkDriver(host, {
      ...(opts.config ? { config: opts.config } : {}),
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      ...(opts.onDelivery ? { onDelivery: opts.onDelivery } : {}),
      ...(opts.transmit ? { transmit: opts.transmit } : {}),
    });
  }
  receive(from: NodeId, data: Uint8Array): void {
    this.driver.receive(from, data);
  }
}

/** Checks every bound of a link; returns a violation message or undefined. */
export function checkBounds(l: Link): string | undefined {
  const c = l.config;
  const r = l.reliable;
  if (r.bufferedPackets > c.sendBufferPackets)
    return `send buffer ${r.bufferedPackets} > ${c.sendBufferPackets} packets`;
  if (r.bufferedBytes > c.sendBufferBytes)
    return `send buffer ${r.bufferedBytes} > ${c.sendBufferBytes} bytes`;
  if (r.nextSeq - r.sndUna > c.recvWindowPackets)
    return `window ${r.nextSeq - r.sndUna} > ${c.recvWindowPackets}`;
  const h = l.heldReliable;
  if (h.packets > c.recvBufferPackets || h.bytes > c.recvBufferBytes)
    return `receive buffer ${h.packets}/${h.bytes}`;
  if (l.pendingDeliveries > 2 * c.recvBufferPackets) return `deliveries ${l.pendingDeliveries}`;
  if (l.realtime.historyPackets > c.realtimeHistoryPackets) return `history ${l.realtime.historyPackets}`;
  if (l.reliableIn.rangeCount > c.recvWindowPackets) return `ranges ${l.reliableIn.rangeCount}`;
  return undefined;
}

export interface ReliableSeedResult {
  seed: number;
  accepted: number;
  delivered: number;
  duplicates: number;
  finishedAt: number;
  loss: number;
  bursty: boolean;
  delayMs: number;
  retransmitted: number;
}

/**
 * One seed of the exactly-once scenario: node 1 pushes `packets` reliable packets (random sizes) to
 * node 2 as fast as the link accepts them, over adverse conditions. Invariants after every event:
 * no duplicate delivery, every bound respected, no stall longer than `stallMs`. Throws on violation
 * or if not everything accepted was delivered by `maxMs`.
 */
export function runReliableSeed(
  seed: number,
  opts: {
    packets: number;
    maxLoss?: number;
    bursty?: boolean;
    stallMs?: number;
    maxMs?: number;
    config?: Partial<LinkConfig>;
  },
): ReliableSeedResult {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const cond = adverseParams(new Rng(seed ^ 0x5eed), opts.maxLoss, opts.bursty);
  const config: Partial<LinkConfig> = {
    sendBufferPackets: 128,
    sendBufferBytes: 128 * 1400,
    perFlowPackets: 128,
    ...opts.config,
  };
  let next = 0;
  const seen = new Uint8Array(opts.packets);
  let delivered = 0;
  let duplicates = 0;
  let lastProgress = 0;
  const stallMs = opts.stallMs ?? 15_000;
  const push = (n: LinkNode): void => {
    while (next < opts.packets) {
      const size = 12 + n.host.rng.int(1000);
      if (
        n.driver.send(2, LinkChannel.Reliable, header(), payloadOf(next, size, n.host.clock.now())) !==
        SendResult.Ok
      )
        break;
      next++;
    }
  };
  sim.addNode(1, (host) => {
    const n: LinkNode = new LinkNode(host, {
      config,
      onEvent: (_p, e) => {
        if (e.type === "up" || e.type === "writable") push(n);
      },
    });
    n.driver.addNeighbour(2);
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, {
      config,
      onDelivery: (_p, d) => {
        const id = idOf(d);
        if (seen[id] === 1) duplicates++;
        else {
          seen[id] = 1;
          delivered++;
          lastProgress = host.clock.now();
        }
        return true;
      },
    });
    n.driver.addNeighbour(1);
    return n;
  });
  sim.connect(1, 2, cond.params);
  sim.addInvariant("exactly-once", () => (duplicates > 0 ? `${duplicates} duplicate deliveries` : undefined));
  sim.addInvariant("bounds", (s) => {
    for (const id of [1, 2]) {
      const l = s.program<LinkNode>(id)?.driver.link(id === 1 ? 2 : 1);
      const v = l && checkBounds(l);
      if (v) return `node ${id}: ${v}`;
    }
    return undefined;
  });
  sim.addInvariant("no-stall", (s) =>
    next > delivered && s.now - Math.max(lastProgress, 2000) > stallMs
      ? `no progress for ${(s.now - lastProgress).toFixed(0)} ms with ${next - delivered} outstanding`
      : undefined,
  );
  const done = sim.runUntil(() => next === opts.packets && delivered === opts.packets, opts.maxMs ?? 120_000);
  if (!done)
    throw new Error(`seed ${seed}: only ${delivered}/${next} of ${opts.packets} delivered by ${sim.now} ms`);
  const l1 = sim.program<LinkNode>(1)?.driver.link(2);
  return {
    seed,
    accepted: next,
    delivered,
    duplicates,
    finishedAt: sim.now,
    loss: cond.loss,
    bursty: cond.bursty,
    delayMs: cond.params.delayMs,
    retransmitted: l1?.reliable.stats.retransmitted ?? 0,
  };
}

export interface LivenessSeedResult {
  seed: number;
  upAt: number;
  crashAt: number;
  downAt: number;
  /** downAt − crashAt. */
  detectMs: number;
  restartAt: number;
  /** Arrival time at node 1 of the first frame of node 2's new incarnation. */
  firstNewFrameAt: number;
  restartEventAt: number;
  falseDowns: number;
  /** One-way delay and jitter of the link (ms). */
  delayMs: number;
  jitterMs: number;
}

/**
 * One seed of the liveness scenario: two nodes over a lossy (≤ 5 %), jittery link of 1–100 ms
 * (delay + jitter ≤ 100 ms). Node 2 crashes at a random time, then restarts. Node 1 must declare it
 * dead within deadTimeout + one hello interval of the crash, never before, and must adopt the
 * restart once the new incarnation has echoed its nonce: one round trip after the first frame of
 * the new incarnation arrives, unless a handshake frame is lost (docs/links.md §2.1).
 */
export function runLivenessSeed(seed: number, config: Partial<LinkConfig> = {}): LivenessSeedResult {
  const rng = new Rng(seed ^ 0x11fe);
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const delayMs = rng.uniform(1, 90);
  const params: LinkParams = {
    delayMs,
    jitterMs: rng.uniform(0, Math.min(delayMs, 100 - delayMs)),
    loss: rng.uniform(0, 0.05),
  };
  const events: { at: number; e: LinkEvent }[] = [];
  let firstNewFrameAt = Number.NaN;
  let knownInc = 0;
  let crashed = false;
  sim.addNode(1, (host) => {
    const n = new LinkNode(host, { config, onEvent: (_p, e) => events.push({ at: host.clock.now(), e }) });
    n.driver.addNeighbour(2);
    const inner = n.receive.bind(n);
    n.receive = (from, data) => {
      // The incarnation is bytes 12..15 of every frame.
      if (data.length >= 16) {
        const inc = new DataView(data.buffer, data.byteOffset).getUint32(12);
        if (knownInc === 0) knownInc = inc;
        else if (inc !== knownInc && crashed && Number.isNaN(firstNewFrameAt))
          firstNewFrameAt = host.clock.now();
      }
      inner(from, data);
    };
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, { config });
    n.driver.addNeighbour(1);
    return n;
  });
  sim.connect(1, 2, params);
  const crashAt = rng.uniform(1500, 3000);
  const restartAt = crashAt + rng.uniform(1500, 3000);
  sim.at(crashAt, (s) => {
    crashed = true;
    s.crash(2);
  });
  sim.at(restartAt, (s) => s.restart(2));
  sim.run(restartAt + 3000);
  const ups = events.filter((x) => x.e.type === "up");
  const downs = events.filter((x) => x.e.type === "down");
  const restart = events.find((x) => x.e.type === "restart");
  const downAfterCrash = downs.find((x) => x.at >= crashAt);
  return {
    seed,
    upAt: ups[0]?.at ?? Number.NaN,
    crashAt,
    downAt: downAfterCrash?.at ?? Number.NaN,
    detectMs: (downAfterCrash?.at ?? Number.NaN) - crashAt,
    restartAt,
    firstNewFrameAt,
    restartEventAt: restart?.at ?? Number.NaN,
    falseDowns: downs.filter((x) => x.at < crashAt).length,
    delayMs,
    jitterMs: params.jitterMs ?? 0,
  };
}

export interface LatencyResult {
  loss: number;
  packets: number;
  meanMs: number;
  p99Ms: number;
  maxMs: number;
  modelMs: number;
  epsilonMs: number;
  retransmitted: number;
}

/**
 * Recovery latency over one link of one-way delay d: node 1 sends one small reliable packet every
 * `gapMs`; the latency of each is its delivery time at node 2 minus the time it was handed to the
 * link. Model (performance reference §1): d + (p/(1−p))·(2d + ε), where ε is the extra detection
 * time per attempt: the RACK time threshold adds RTT/8, so ε = 2d/8 (2.5 ms at d = 10 ms).
 */
export function runLatency(
  seed: number,
  opts: {
    loss: number;
    packets: number;
    delayMs?: number;
    gapMs?: number;
    payload?: number;
    config?: Partial<LinkConfig>;
  },
): LatencyResult {
  const d = opts.delayMs ?? 10;
  const gap = opts.gapMs ?? 1;
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const lat: number[] = [];
  let sent = 0;
  let upAt = Number.NaN;
  sim.addNode(1, (host) => {
    const n = new LinkNode(host, {
      ...(opts.config ? { config: opts.config } : {}),
      onEvent: (_p, e) => {
        if (e.type === "up" && Number.isNaN(upAt)) {
          upAt = host.clock.now();
          const tick = (): void => {
            if (sent >= opts.packets) return;
            const now = host.clock.now();
            if (
              n.driver.send(2, LinkChannel.Reliable, header(), payloadOf(sent, opts.payload ?? 100, now)) ===
              SendResult.Ok
            )
              sent++;
            host.schedule(now + gap, tick);
          };
          tick();
        }
      },
    });
    n.driver.addNeighbour(2);
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, {
      ...(opts.config ? { config: opts.config } : {}),
      onDelivery: (_p, dl) => {
        lat.push(host.clock.now() - sentAtOf(dl));
        return true;
      },
    });
    n.driver.addNeighbour(1);
    return n;
  });
  sim.connect(1, 2, { delayMs: d, loss: opts.loss });
  sim.runUntil(() => lat.length >= opts.packets, opts.packets * gap + 120_000);
  if (lat.length < opts.packets)
    throw new Error(`latency seed ${seed}: ${lat.length}/${opts.packets} delivered`);
  lat.sort((a, b) => a - b);
  const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
  // Detection per attempt: the time threshold (RTT/8 past one RTT), or the wait for the next packet.
  const eps = Math.max((2 * d) / 8, gap);
  const p = opts.loss;
  return {
    loss: p,
    packets: lat.length,
    meanMs: mean,
    p99Ms: lat[Math.floor(0.99 * lat.length)] as number,
    maxMs: lat[lat.length - 1] as number,
    modelMs: d + (p / (1 - p)) * (2 * d + eps),
    epsilonMs: eps,
    retransmitted: sim.program<LinkNode>(1)?.driver.link(2)?.reliable.stats.retransmitted ?? 0,
  };
}

export interface FlowShareResult {
  flows: number;
  bytes: number[];
  jain: number;
}

/**
 * `flows` backlogged flows share one reliable link through a bandwidth bottleneck with a drop-tail
 * queue; each flow's goodput at the receiver is counted after a warm-up.
 */
export function runFlowShare(
  seed: number,
  opts: { flows: number; durationMs: number; warmupMs?: number; bandwidthBps?: number; delayMs?: number },
): FlowShareResult {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const warm = opts.warmupMs ?? 1000;
  const bytes = new Array<number>(opts.flows).fill(0);
  const ids = new Array<number>(opts.flows).fill(0);
  const config: Partial<LinkConfig> = { perFlowPackets: 32 };
  const fill = (n: LinkNode): void => {
    for (let f = 0; f < opts.flows; f++) {
      for (;;) {
        const r = n.driver.send(2, LinkChannel.Reliable, header(f), payloadOf(ids[f] as number, 1156, 0), f);
        if (r !== SendResult.Ok) break;
        ids[f] = (ids[f] as number) + 1;
      }
    }
  };
  sim.addNode(1, (host) => {
    const n: LinkNode = new LinkNode(host, {
      config,
      onEvent: (_p, e) => {
        if (e.type === "up" || e.type === "writable") fill(n);
      },
    });
    n.driver.addNeighbour(2);
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, {
      config,
      onDelivery: (_p, d) => {
        if (host.clock.now() >= warm)
          bytes[d.header.srcPort] = (bytes[d.header.srcPort] as number) + d.payload.length;
        return true;
      },
    });
    n.driver.addNeighbour(1);
    return n;
  });
  const bw = opts.bandwidthBps ?? 4_000_000;
  const delay = opts.delayMs ?? 10;
  sim.connectOneWay(1, 2, {
    delayMs: delay,
    bandwidthBps: bw,
    queueBytes: Math.round(((bw / 8) * (2 * delay)) / 1000),
  });
  sim.connectOneWay(2, 1, { delayMs: delay });
  sim.addInvariant("bounds", (s) => {
    const l = s.program<LinkNode>(1)?.driver.link(2);
    return l && checkBounds(l);
  });
  sim.run(warm + opts.durationMs);
  let s = 0;
  let s2 = 0;
  for (const x of bytes) {
    s += x;
    s2 += x * x;
  }
  return { flows: opts.flows, bytes, jain: s2 === 0 ? 0 : (s * s) / (opts.flows * s2) };
}

/** A raw router: forwards enveloped packets along static next hops. */
export class Router implements NodeProgram {
  readonly #host: Host;
  readonly #next: (dst: NodeId) => NodeId;
  constructor(host: Host, next: (dst: NodeId) => NodeId) {
    this.#host = host;
    this.#next = next;
  }
  receive(_from: NodeId, data: Uint8Array): void {
    const u = unwrap(data);
    if (u) this.#host.send(this.#next(u.dst), data);
  }
}

export interface BottleneckResult {
  linkBytes: number;
  renoBytes: number;
  fairShare: number;
  linkRatio: number;
  renoRatio: number;
  renoTimeouts: number;
  renoFastRetransmits: number;
  linkReductions: number;
  linkRetransmitted: number;
}

/**
 * A link flow (1→5) and an end-to-end NewReno flow (2→6) share one drop-tail bottleneck 3→4.
 * Access links 1 ms; bottleneck `bandwidthBps`, 10 ms, queue one BDP. Both use 1,200-byte frames.
 */
export function runBottleneck(
  seed: number,
  opts: {
    durationMs: number;
    warmupMs?: number;
    bandwidthBps?: number;
    delayMs?: number;
    queueBdp?: number;
    /** Jitter on the access links (ms), which breaks drop-tail phase effects. */
    accessJitterMs?: number;
    config?: Partial<LinkConfig>;
  },
): BottleneckResult {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const warm = opts.warmupMs ?? 5000;
  const bw = opts.bandwidthBps ?? 8_000_000;
  const delay = opts.delayMs ?? 10;
  const rtt = 2 * (delay + 2);
  let linkBytes = 0;
  let renoAtWarm = 0;
  let reno: RenoReceiver | undefined;
  let renoSender: RenoSender | undefined;
  const PAYLOAD = 1156; // 1,200-byte frames
  let id = 0;
  const fill = (n: LinkNode): void => {
    while (n.driver.send(5, LinkChannel.Reliable, header(), payloadOf(id, PAYLOAD, 0)) === SendResult.Ok)
      id++;
  };
  sim.addNode(1, (host) => {
    const n: LinkNode = new LinkNode(host, {
      ...(opts.config ? { config: opts.config } : {}),
      transmit: (peer, b) => host.send(3, wrap(peer, 1, b)),
      onEvent: (_p, e) => {
        if (e.type === "up" || e.type === "writable") fill(n);
      },
    });
    n.driver.addNeighbour(5);
    n.receive = (_from, data) => {
      const u = unwrap(data);
      if (u) n.driver.receive(u.src, u.bytes);
    };
    return n;
  });
  sim.addNode(5, (host) => {
    const n = new LinkNode(host, {
      ...(opts.config ? { config: opts.config } : {}),
      transmit: (peer, b) => host.send(4, wrap(peer, 5, b)),
      onDelivery: (_p, d) => {
        if (host.clock.now() >= warm) linkBytes += d.payload.length + 44;
        return true;
      },
    });
    n.driver.addNeighbour(1);
    n.receive = (_from, data) => {
      const u = unwrap(data);
      if (u) n.driver.receive(u.src, u.bytes);
    };
    return n;
  });
  sim.addNode(2, (host) => {
    const s = new RenoSender(host, { segmentBytes: 1200, transmit: (b) => host.send(3, wrap(6, 2, b)) });
    renoSender = s;
    host.schedule(host.clock.now() + 300, () => s.start());
    return { receive: (_f: NodeId, d: Uint8Array) => s.receive(unwrap(d)?.bytes ?? new Uint8Array(0)) };
  });
  sim.addNode(6, (host) => {
    const r = new RenoReceiver(host, (b) => host.send(4, wrap(2, 6, b)));
    reno = r;
    return { receive: (_f: NodeId, d: Uint8Array) => r.receive(unwrap(d)?.bytes ?? new Uint8Array(0)) };
  });
  sim.addNode(3, (host) => new Router(host, (dst) => (dst === 5 || dst === 6 ? 4 : dst)));
  sim.addNode(4, (host) => new Router(host, (dst) => (dst === 5 || dst === 6 ? dst : 3)));
  const access: LinkParams = { delayMs: 1, jitterMs: opts.accessJitterMs ?? 0 };
  sim.connect(1, 3, access);
  sim.connect(2, 3, access);
  sim.connect(4, 5, access);
  sim.connect(4, 6, access);
  sim.connectOneWay(3, 4, {
    delayMs: delay,
    bandwidthBps: bw,
    overheadBytes: 8,
    queueBytes: Math.round(((bw / 8) * rtt * (opts.queueBdp ?? 1)) / 1000),
  });
  sim.connectOneWay(4, 3, { delayMs: delay });
  sim.at(warm, () => {
    renoAtWarm = reno?.delivered ?? 0;
  });
  sim.run(warm + opts.durationMs);
  const renoBytes = ((reno?.delivered ?? 0) - renoAtWarm) * 1200;
  const fair = (linkBytes + renoBytes) / 2;
  return {
    linkBytes,
    renoBytes,
    fairShare: fair,
    linkRatio: linkBytes / fair,
    renoRatio: renoBytes / fair,
    renoTimeouts: renoSender?.timeouts ?? 0,
    renoFastRetransmits: renoSender?.fastRetransmits ?? 0,
    linkReductions: sim.program<LinkNode>(1)?.driver.link(5)?.reliable.cc.reductions ?? 0,
    linkRetransmitted: sim.program<LinkNode>(1)?.driver.link(5)?.reliable.stats.retransmitted ?? 0,
  };
}

export interface PathResult {
  loss: number;
  hops: number;
  /** Goodput in bytes per second (1,200-byte frames). */
  hopByHop: number;
  endToEnd: number;
  ratio: number;
  /** Mathis model for one link and for the whole path. */
  mathisHop: number;
  mathisPath: number;
}

/**
 * Throughput over a line of `hops` links (10 ms, loss p each way): a TCP-fair hop-by-hop path (the
 * link cores forwarding with back-pressure) vs an end-to-end NewReno flow over the same path
 * (raw routers). Separate simulations with identical parameters.
 */
export function runPath(
  seed: number,
  opts: { loss: number; hops?: number; durationMs: number; warmupMs?: number },
): PathResult {
  const hops = opts.hops ?? 4;
  const warm = opts.warmupMs ?? 3000;
  const params: LinkParams = { delayMs: 10, loss: opts.loss };
  const last = hops + 1;
  // Hop by hop.
  const hbh = new Simulator({ seed, traceCapacity: 0 });
  let hbhBytes = 0;
  let id = 0;
  for (let i = 1; i <= last; i++) {
    hbh.addNode(i, (host) => {
      const prev = i - 1;
      const next = i + 1;
      let n: LinkNode;
      const fill = (): void => {
        while (n.driver.send(next, LinkChannel.Reliable, header(), payloadOf(id, 1156, 0)) === SendResult.Ok)
          id++;
      };
      n = new LinkNode(host, {
        onEvent: (peer, e) => {
          if (i === 1 && (e.type === "up" || e.type === "writable")) fill();
          else if (peer === next && (e.type === "writable" || e.type === "up"))
            n.driver.offerDeliveries(prev);
        },
        onDelivery: (_peer, d) => {
          if (i === last) {
            if (host.clock.now() >= warm) hbhBytes += d.payload.length + 44;
            return true;
          }
          return n.driver.send(next, LinkChannel.Reliable, d.header, d.payload) === SendResult.Ok;
        },
      });
      if (i > 1) n.driver.addNeighbour(prev);
      if (i < last) n.driver.addNeighbour(next);
      return n;
    });
  }
  for (let i = 1; i < last; i++) hbh.connect(i, i + 1, params);
  hbh.addInvariant("bounds", (s) => {
    for (let i = 1; i <= last; i++) {
      const n = s.program<LinkNode>(i);
      if (!n) continue;
      for (const p of n.driver.neighbours) {
        const l = n.driver.link(p);
        const v = l && checkBounds(l);
        if (v) return `node ${i} → ${p}: ${v}`;
      }
    }
    return undefined;
  });
  hbh.run(warm + opts.durationMs);
  // End to end.
  const e2e = new Simulator({ seed, traceCapacity: 0 });
  let reno: RenoReceiver | undefined;
  let atWarm = 0;
  e2e.addNode(1, (host) => {
    const s = new RenoSender(host, { segmentBytes: 1200, transmit: (b) => host.send(2, wrap(last, 1, b)) });
    host.schedule(300, () => s.start());
    return { receive: (_f: NodeId, d: Uint8Array) => s.receive(unwrap(d)?.bytes ?? new Uint8Array(0)) };
  });
  e2e.addNode(last, (host) => {
    const r = new RenoReceiver(host, (b) => host.send(last - 1, wrap(1, last, b)));
    reno = r;
    return { receive: (_f: NodeId, d: Uint8Array) => r.receive(unwrap(d)?.bytes ?? new Uint8Array(0)) };
  });
  for (let i = 2; i < last; i++)
    e2e.addNode(i, (host) => new Router(host, (dst) => (dst > i ? i + 1 : i - 1)));
  for (let i = 1; i < last; i++) e2e.connect(i, i + 1, params);
  e2e.at(warm, () => {
    atWarm = reno?.delivered ?? 0;
  });
  e2e.run(warm + opts.durationMs);
  const e2eBytes = ((reno?.delivered ?? 0) - atWarm) * 1200;
  const secs = opts.durationMs / 1000;
  const p = opts.loss;
  const pathLoss = 1 - (1 - p) ** hops;
  return {
    loss: p,
    hops,
    hopByHop: hbhBytes / secs,
    endToEnd: e2eBytes / secs,
    ratio: e2eBytes === 0 ? Number.POSITIVE_INFINITY : hbhBytes / e2eBytes,
    mathisHop: (1200 / 0.02) * Math.sqrt(1.5 / p),
    mathisPath: (1200 / (0.02 * hops)) * Math.sqrt(1.5 / pathLoss),
  };
}

export interface UnreliableSeedResult {
  seed: number;
  loss: number;
  delayMs: number;
  sent: number;
  rtDelivered: number;
  beDelivered: number;
  rtDuplicates: number;
  beDuplicates: number;
  rtRetransmitted: number;
  rtNew: number;
  /** Requests for the same sequence number more than once (must be 0). */
  repeatedRequests: number;
  /** Retransmissions that left the sender later than the deadline allows (must be 0). */
  lateRetransmissions: number;
  lossOut: number;
}

/**
 * Real-time and best-effort channels side by side under adverse conditions: node 1 sends one
 * packet per channel every `gapMs`. Checks: no duplicate delivery; every NACKed sequence number is
 * requested at most once; a retransmission only leaves while it can arrive within the deadline;
 * retransmissions ≤ share × new packets; the loss the receiver reports approximates the real one.
 */
export function runUnreliableSeed(
  seed: number,
  opts: { packets: number; gapMs?: number },
): UnreliableSeedResult {
  const rng = new Rng(seed ^ 0x7ea1);
  const cond = adverseParams(rng, 0.2);
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const gap = opts.gapMs ?? 2;
  const rtSeen = new Uint8Array(opts.packets);
  const beSeen = new Uint8Array(opts.packets);
  let rtDup = 0;
  let beDup = 0;
  let rtDel = 0;
  let beDel = 0;
  let sent = 0;
  let repeated = 0;
  let late = 0;
  const requested = new Set<number>();
  const sentAt = new Map<number, number>();
  let rtSeq = 0;
  sim.addNode(1, (host) => {
    const n: LinkNode = new LinkNode(host, {
      onEvent: (_p, e) => {
        if (e.type !== "up" || sent > 0) return;
        const tick = (): void => {
          if (sent >= opts.packets) return;
          const now = host.clock.now();
          if (n.driver.send(2, LinkChannel.Realtime, header(1), payloadOf(sent, 100, now)) === SendResult.Ok)
            sentAt.set(rtSeq++, now);
          n.driver.send(2, LinkChannel.BestEffort, header(2), payloadOf(sent, 100, now));
          sent++;
          host.schedule(now + gap, tick);
        };
        tick();
      },
      transmit: (peer, b) => {
        // Watch retransmissions leave: they must still be able to make the deadline.
        // LinkData: type byte 3; body at 16: peerIncarnation(4) channel(1) flags(1) seq(4).
        if (b[3] === 0x12 && b[20] === 1 && ((b[21] as number) & 1) === 1) {
          const seq = new DataView(b.buffer, b.byteOffset).getUint32(22);
          const first = sentAt.get(seq);
          const l = n.driver.link(2);
          const srtt = l?.rtt.srtt ?? 0;
          if (
            first !== undefined &&
            host.clock.now() - first + srtt / 2 > (l?.config.realtimeHistoryMs ?? 100) + 1e-9
          )
            late++;
        }
        host.send(peer, b);
      },
    });
    n.driver.addNeighbour(2);
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, {
      onDelivery: (_p, d) => {
        const id = idOf(d);
        if (d.channel === LinkChannel.Realtime) {
          if (rtSeen[id] === 1) rtDup++;
          rtSeen[id] = 1;
          rtDel++;
        } else {
          if (beSeen[id] === 1) beDup++;
          beSeen[id] = 1;
          beDel++;
        }
        return true;
      },
      transmit: (peer, b) => {
        if (b[3] === 0x14) {
          const dv = new DataView(b.buffer, b.byteOffset);
          const count = b[20] as number;
          for (let i = 0; i < count; i++) {
            const s = dv.getUint32(21 + 4 * i);
            if (requested.has(s)) repeated++;
            requested.add(s);
          }
        }
        host.send(peer, b);
      },
    });
    n.driver.addNeighbour(1);
    return n;
  });
  sim.connect(1, 2, cond.params);
  sim.addInvariant("real-time", () =>
    rtDup + beDup > 0
      ? `${rtDup + beDup} duplicates`
      : repeated > 0
        ? `${repeated} repeated NACKs`
        : late > 0
          ? `${late} late retransmissions`
          : undefined,
  );
  sim.run(3000 + opts.packets * gap + 1000);
  const l1 = sim.program<LinkNode>(1)?.driver.link(2);
  return {
    seed,
    loss: cond.loss,
    delayMs: cond.params.delayMs,
    sent,
    rtDelivered: rtDel,
    beDelivered: beDel,
    rtDuplicates: rtDup,
    beDuplicates: beDup,
    rtRetransmitted: l1?.realtime.stats.retransmitted ?? 0,
    rtNew: l1?.realtime.stats.sent ?? 0,
    repeatedRequests: repeated,
    lateRetransmissions: late,
    lossOut: l1?.metrics().lossOut ?? Number.NaN,
  };
}

/** A backlogged reliable link with a token-bucket cap of `capBytesPerMs`; frame bytes delivered in `ms`. */
export function runCapped(seed: number, capBytesPerMs: number, ms: number): { bytes: number } {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  let bytes = 0;
  let upAt = Number.NaN;
  const config: Partial<LinkConfig> = { rateCapBytesPerMs: capBytesPerMs };
  sim.addNode(1, (host) => {
    const n: LinkNode = new LinkNode(host, {
      config,
      onEvent: (_p, e) => {
        if (e.type === "up") upAt = host.clock.now();
        if (e.type === "up" || e.type === "writable")
          while (n.driver.send(2, LinkChannel.Reliable, header(), payloadOf(0, 1156, 0)) === SendResult.Ok);
      },
    });
    n.driver.addNeighbour(2);
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, {
      config,
      onDelivery: (_p, d) => {
        if (host.clock.now() <= upAt + ms) bytes += d.payload.length + 44;
        return true;
      },
    });
    n.driver.addNeighbour(1);
    return n;
  });
  sim.connect(1, 2, { delayMs: 5 });
  sim.runUntil((s) => !Number.isNaN(upAt) && s.now > upAt + ms + 100, 60_000);
  return { bytes };
}

export interface RestartSeedResult {
  restartEvents: number;
  discarded: number;
  acceptedAfter: number;
  deliveredAfter: number;
  duplicatesAfter: number;
}

/**
 * Node 1 streams reliable packets to node 2 over an adverse link; node 2 crashes mid-transfer and
 * restarts. Node 1 must see one restart, and every packet it accepts after the link is back must
 * reach the new incarnation exactly once.
 */
export function runRestartSeed(seed: number): RestartSeedResult {
  const rng = new Rng(seed ^ 0x4e57);
  const cond = adverseParams(rng, 0.1);
  const sim = new Simulator({ seed, traceCapacity: 0 });
  let restartEvents = 0;
  let discarded = 0;
  let phase = 0; // 0 before the restart, 1 after it
  let id = 0;
  let acceptedAfter = 0;
  const seenAfter = new Set<number>();
  let deliveredAfter = 0;
  let duplicatesAfter = 0;
  const crashAt = rng.uniform(1500, 3000);
  const restartAt = crashAt + rng.uniform(100, 1500);
  const stopAt = restartAt + 30_000;
  const push = (n: LinkNode): void => {
    // At most 300 packets before the crash and 300 after the restart (keeps each seed short).
    while (n.host.clock.now() < stopAt && (phase === 0 ? id < 300 : acceptedAfter < 300)) {
      const r = n.driver.send(2, LinkChannel.Reliable, header(), payloadOf(id, 200, phase));
      if (r !== SendResult.Ok) break;
      if (phase === 1) acceptedAfter++;
      id++;
    }
  };
  sim.addNode(1, (host) => {
    const n: LinkNode = new LinkNode(host, {
      config: { sendBufferPackets: 64, perFlowPackets: 64 },
      onEvent: (_p, e) => {
        if (e.type === "restart") {
          restartEvents++;
          discarded += e.discarded;
          phase = 1;
        }
        if (e.type === "up" || e.type === "writable") push(n);
      },
    });
    n.driver.addNeighbour(2);
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, {
      onDelivery: (_p, d) => {
        if (sentAtOf(d) === 1) {
          const i = idOf(d);
          if (seenAfter.has(i)) duplicatesAfter++;
          else {
            seenAfter.add(i);
            deliveredAfter++;
          }
        }
        return true;
      },
    });
    n.driver.addNeighbour(1);
    return n;
  });
  sim.connect(1, 2, cond.params);
  sim.at(crashAt, (s) => s.crash(2));
  sim.at(restartAt, (s) => s.restart(2));
  sim.addInvariant("restart", () =>
    duplicatesAfter > 0 ? `${duplicatesAfter} duplicates after the restart` : undefined,
  );
  sim.runUntil(() => acceptedAfter >= 300 && deliveredAfter === acceptedAfter, stopAt + 30_000);
  return { restartEvents, discarded, acceptedAfter, deliveredAfter, duplicatesAfter };
}
