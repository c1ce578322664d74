/**
 * Corner sweeps of the reliable channel in netsim: sequence numbers that start next to the 2^32
 * wrap, receive windows of 16–64 packets filled and wrapped thousands of times, one-way link
 * failures (one direction dead, the other working) and whole-process stalls. Both nodes send to
 * each other at once. The simulator checks after every event:
 *
 * - exactly once: no packet is delivered twice;
 * - sequence mapping: packet k of a direction is delivered with link sequence number ISN + k, and
 *   the receiver's cumulative ack is exactly ISN + (the number of packets delivered without a gap)
 *   — the reliable link delivers out of order by design (docs/links.md §4); what must hold in order
 *   is the sequence space, across the wrap;
 * - bounds: every buffer, window and range list of both links (`checkBounds`);
 * - progress: no 10 s without a new delivery while packets are outstanding and no fault is active.
 *
 * The `impl` argument lets a test run the same sweep against a patched copy of the sources
 * (test/support/mutant.ts), to prove the sweep catches a planted bug.
 */
import { type LinkParams, Simulator } from "@spines-ts/netsim";
import { type Host, type NodeId, type NodeProgram, Rng } from "@spines-ts/primitives";
import { LinkChannel } from "@spines-ts/wire";
import type { Delivery, Link, LinkConfig, LinkEvent } from "../../src/index.ts";
import * as real from "../../src/index.ts";
import { checkBounds, header } from "./scenarios.ts";

/** What a sweep needs from the link-arq sources (the real ones, or a mutant's). */
export interface LinkImpl {
  readonly LinkDriver: typeof real.LinkDriver;
}

export const TWO32 = 2 ** 32;

export interface SweepOptions {
  /** Packets each node sends to the other. */
  packets: number;
  /** Receive window (= send buffer), packets. */
  window: number;
  /** First sequence number of both directions; undefined: the default (derived from incarnations). */
  isn?: number | undefined;
  /** Link conditions, both directions. */
  params: LinkParams;
  /** One-way outages (loss 100 % in one direction): how many, and their length range (ms). */
  oneWay?: { count: number; minMs: number; maxMs: number };
  /** Whole-process stalls of either node: how many, and their length range (ms). */
  stalls?: { count: number; minMs: number; maxMs: number };
  /** Give up (and fail) at this virtual time. Default 600 s. */
  maxMs?: number;
  config?: Partial<LinkConfig>;
}

export interface SweepResult {
  seed: number;
  /** Packets delivered, both directions. */
  delivered: number;
  /** Virtual time at the end, ms. */
  finishedAt: number;
  /** The sequence numbers of both directions crossed 2^32. */
  wrapped: boolean;
  /** Times the receive window's bitmap ring was reused (highest delivered seq − ISN) / window, summed. */
  windowTurns: number;
  retransmitted: number;
  /** Frames dropped by the faults (one-way outages) and events held by stalls. */
  faultDrops: number;
  stalledEvents: number;
  linkDowns: number;
  /** The first sequence number of each direction (1 → 2, 2 → 1), as seen by the receivers. */
  isns: [number, number];
}

function payload(id: number): Uint8Array {
  const b = new Uint8Array(12);
  new DataView(b.buffer).setUint32(0, id);
  return b;
}
function idOf(d: Delivery): number {
  return new DataView(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength).getUint32(0);
}

/** One direction's receiving side: what arrived, and the invariants over it. */
class Inbox {
  readonly seen: Uint8Array;
  delivered = 0;
  duplicates = 0;
  /** Smallest id not yet delivered. */
  contiguous = 0;
  /** seq − id of the first delivery (the ISN), checked for every later one. */
  offset: number | undefined;
  badMapping = "";
  maxSeq = -1;
  constructor(packets: number) {
    this.seen = new Uint8Array(packets);
  }
  take(d: Delivery): void {
    const id = idOf(d);
    if (this.seen[id] === 1) {
      this.duplicates++;
      return;
    }
    this.seen[id] = 1;
    this.delivered++;
    while (this.contiguous < this.seen.length && this.seen[this.contiguous] === 1) this.contiguous++;
    if (this.offset === undefined) this.offset = d.seq - id;
    else if (d.seq - id !== this.offset && this.badMapping === "")
      this.badMapping = `packet ${id} arrived as seq ${d.seq}, expected ${this.offset + id}`;
    if (d.seq > this.maxSeq) this.maxSeq = d.seq;
  }
}

class SweepNode implements NodeProgram {
  readonly host: Host;
  readonly driver: real.LinkDriver;
  readonly peer: NodeId;
  readonly packets: number;
  next = 0;
  downs = 0;
  constructor(
    host: Host,
    impl: LinkImpl,
    peer: NodeId,
    packets: number,
    config: Partial<LinkConfig>,
    inbox: Inbox,
    onProgress: () => void,
  ) {
    this.host = host;
    this.peer = peer;
    this.packets = packets;
    this.driver = new impl.LinkDriver(host, {
      config,
      onEvent: (_p: NodeId, e: LinkEvent) => {
        if (e.type === "down") this.downs++;
        if (e.type === "up" || e.type === "writable") this.push();
      },
      onDelivery: (_p: NodeId, d: Delivery) => {
        inbox.take(d);
        onProgress();
        return true;
      },
    });
    this.driver.addNeighbour(peer);
  }
  push(): void {
    while (this.next < this.packets) {
      if (this.driver.send(this.peer, LinkChannel.Reliable, header(), payload(this.next)) !== "ok") break;
      this.next++;
    }
  }
  link(): Link | undefined {
    return this.driver.link(this.peer);
  }
  receive(from: NodeId, data: Uint8Array): void {
    this.driver.receive(from, data);
  }
}

/**
 * One seed of a corner sweep. Throws (naming the seed and the invariant, via the simulator) on any
 * violation, or if not every accepted packet was delivered by `maxMs`.
 */
export function runSweepSeed(seed: number, o: SweepOptions, impl: LinkImpl = real): SweepResult {
  const sim = new Simulator({ seed, traceCapacity: 64 });
  const rng = new Rng(seed ^ 0x5eeb);
  const config: Partial<LinkConfig> = {
    recvWindowPackets: o.window,
    sendBufferPackets: o.window,
    sendBufferBytes: o.window * 1400,
    perFlowPackets: o.window,
    initialSequence: o.isn,
    ...o.config,
  };
  const inboxes = new Map<number, Inbox>([
    [1, new Inbox(o.packets)],
    [2, new Inbox(o.packets)],
  ]);
  let lastProgress = 0;
  let faultUntil = 0;
  let progress = (): void => {};
  const onProgress = (): void => progress();
  for (const [id, peer] of [
    [1, 2],
    [2, 1],
  ] as const) {
    sim.addNode(
      id,
      (host) => new SweepNode(host, impl, peer, o.packets, config, inboxes.get(id) as Inbox, onProgress),
    );
  }
  sim.connect(1, 2, o.params);
  const node = (id: number): SweepNode | undefined => sim.program<SweepNode>(id);
  // Faults, drawn from the seed, each fired when a given share of the transfer is done (so that
  // every fault hits traffic, whatever the link's speed).
  const faults: { frac: number; fire: (s: Simulator) => number }[] = [];
  for (let i = 0; i < (o.oneWay?.count ?? 0); i++) {
    const f = o.oneWay as { minMs: number; maxMs: number };
    const len = rng.uniform(f.minMs, f.maxMs);
    const [a, b] = rng.chance(0.5) ? [1, 2] : [2, 1];
    faults.push({
      frac: rng.uniform(0.05, 0.9),
      fire: (s) => {
        if (!s.isLinkUp(a, b)) return 0;
        s.linkDown(a, b, false);
        s.after(len, (t) => {
          if (!t.isLinkUp(a, b)) t.linkUp(a, b, false);
        });
        return len;
      },
    });
  }
  for (let i = 0; i < (o.stalls?.count ?? 0); i++) {
    const f = o.stalls as { minMs: number; maxMs: number };
    const len = rng.uniform(f.minMs, f.maxMs);
    const who = rng.chance(0.5) ? 1 : 2;
    faults.push({
      frac: rng.uniform(0.05, 0.9),
      fire: (s) => {
        s.stall(who, len);
        return len;
      },
    });
  }
  faults.sort((x, y) => x.frac - y.frac);
  let stalledEvents = 0;
  let nextFault = 0;
  let deliveredTotal = 0;
  progress = (): void => {
    lastProgress = sim.now;
    deliveredTotal++;
    while (nextFault < faults.length && deliveredTotal >= (faults[nextFault]?.frac ?? 1) * 2 * o.packets) {
      const f = faults[nextFault++] as (typeof faults)[number];
      sim.after(0, (s) => {
        faultUntil = Math.max(faultUntil, s.now + f.fire(s));
      });
    }
  };
  sim.addInvariant("exactly-once", () => {
    for (const [id, box] of inboxes)
      if (box.duplicates > 0) return `node ${id}: ${box.duplicates} duplicates`;
    return undefined;
  });
  sim.addInvariant("sequence mapping", () => {
    for (const [id, box] of inboxes) {
      if (box.badMapping !== "") return `node ${id}: ${box.badMapping}`;
      if (o.isn !== undefined && box.offset !== undefined && box.offset !== o.isn)
        return `node ${id}: ISN ${box.offset}, configured ${o.isn}`;
      const l = node(id)?.link();
      if (l !== undefined && box.offset !== undefined && l.reliableIn.cumAck !== box.offset + box.contiguous)
        return `node ${id}: cumulative ack ${l.reliableIn.cumAck} but ${box.contiguous} packets delivered without a gap from ISN ${box.offset}`;
    }
    return undefined;
  });
  sim.addInvariant("bounds", () => {
    for (const id of [1, 2]) {
      const l = node(id)?.link();
      const v = l && checkBounds(l);
      if (v) return `node ${id}: ${v}`;
      if (l && l.reliableIn.rangeCount > o.window / 2 + 1)
        return `node ${id}: ${l.reliableIn.rangeCount} ranges`;
    }
    return undefined;
  });
  const outstanding = (): number => {
    let n = 0;
    for (const id of [1, 2]) n += (node(id)?.next ?? 0) - (inboxes.get(id === 1 ? 2 : 1) as Inbox).delivered;
    return n;
  };
  sim.addInvariant("progress", (s) =>
    outstanding() > 0 && s.now - Math.max(lastProgress, faultUntil, 2000) > 10_000
      ? `no delivery for ${(s.now - lastProgress).toFixed(0)} ms with ${outstanding()} packets outstanding`
      : undefined,
  );
  sim.addInvariant("stall inbox", (s) => {
    for (const id of [1, 2]) stalledEvents = Math.max(stalledEvents, s.stalledEvents(id));
    return undefined;
  });
  const done = sim.runUntil(
    () => inboxes.get(1)?.delivered === o.packets && inboxes.get(2)?.delivered === o.packets,
    o.maxMs ?? 600_000,
  );
  const d1 = inboxes.get(1) as Inbox;
  const d2 = inboxes.get(2) as Inbox;
  if (!done)
    throw new Error(
      `seed ${seed}: delivered ${d2.delivered} (1→2) and ${d1.delivered} (2→1) of ${o.packets} by ${sim.now} ms`,
    );
  let turns = 0;
  let wrapped = true;
  for (const box of [d1, d2]) {
    const isn = box.offset ?? 0;
    turns += Math.floor((box.maxSeq - isn) / o.window);
    if (!(isn < TWO32 && box.maxSeq >= TWO32)) wrapped = false;
  }
  return {
    seed,
    delivered: d1.delivered + d2.delivered,
    finishedAt: sim.now,
    wrapped,
    windowTurns: turns,
    retransmitted:
      (node(1)?.link()?.reliable.stats.retransmitted ?? 0) +
      (node(2)?.link()?.reliable.stats.retransmitted ?? 0),
    faultDrops: sim.stats.drops.down,
    stalledEvents,
    linkDowns: (node(1)?.downs ?? 0) + (node(2)?.downs ?? 0),
    isns: [d2.offset ?? Number.NaN, d1.offset ?? Number.NaN],
  };
}

/** Random link conditions for a sweep: delay 1–20 ms, jitter, loss 0–maxLoss, reordering, duplication. */
export function sweepParams(rng: Rng, maxLoss: number): LinkParams {
  const delayMs = rng.uniform(1, 20);
  return {
    delayMs,
    jitterMs: rng.uniform(0, delayMs / 2),
    loss: rng.uniform(0, maxLoss),
    reorder: rng.uniform(0, 0.03),
    reorderDelayMs: rng.uniform(1, 10),
    duplicate: rng.uniform(0, 0.02),
  };
}

/** An ISN a little below 2^32, so the sequence numbers wrap within the first few windows. */
export function isnNearWrap(rng: Rng, window: number): number {
  return TWO32 - 1 - rng.int(4 * window);
}
