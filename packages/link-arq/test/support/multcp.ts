/**
 * Netsim scenarios of the N-flow (MulTCP) window (docs/congestion.md): several overlay flows on one
 * link against end-to-end NewReno flows at a shared drop-tail bottleneck, and several flows on one
 * lossy link. The real `Link` cores run through `LinkDriver`; the NewReno flows are
 * `support/reno.ts`.
 */
import { type LinkParams, Simulator } from "@spines-ts/netsim";
import type { NodeId } from "@spines-ts/primitives";
import { LinkChannel } from "@spines-ts/wire";
import { type LinkConfig, SendResult } from "../../src/index.ts";
import { RenoReceiver, RenoSender, unwrap, wrap } from "./reno.ts";
import { checkBounds, header, LinkNode, Router } from "./scenarios.ts";

const PAYLOAD = 1156; // 1,200-byte frames, as the NewReno segments
const FRAME = 1200;

/**
 * Keeps every flow of a link backlogged: offers packets until the link says would-block. Flow f
 * stops offering at `until[f]` ms (default never).
 */
function filler(n: () => LinkNode, peer: NodeId, flows: number, until: readonly number[] = []): () => void {
  const payload = new Uint8Array(PAYLOAD);
  return () => {
    const now = n().host.clock.now();
    for (let f = 0; f < flows; f++) {
      if (now >= (until[f] ?? Number.POSITIVE_INFINITY)) continue;
      while (n().driver.send(peer, LinkChannel.Reliable, header(f), payload, f) === SendResult.Ok) {}
    }
  };
}

export interface SharedBottleneckResult {
  /** Goodput of each overlay flow and each NewReno flow after the warm-up, frame bytes. */
  linkFlowBytes: number[];
  renoBytes: number[];
  /** Per-flow fair share: everything carried / number of flows. */
  fairShare: number;
  /** Mean overlay flow over the fair share (the benchmark's `overlayShare`). */
  overlayShare: number;
  /** Mean NewReno flow over the fair share. */
  renoShare: number;
  /** Jain's index over every flow (overlay flows and NewReno flows). */
  jain: number;
  /** The link's emulated flow count at the end. */
  flowCount: number;
  linkReductions: number;
}

/**
 * `linkFlows` backlogged overlay flows on one link 1→5 and `renoFlows` end-to-end NewReno flows
 * (10+i → 20+i) share one drop-tail bottleneck 3→4 (`bandwidthBps`, 10 ms, queue `queueBdp` ×
 * BDP); access links 1 ms (± `accessJitterMs`). Everything is 1,200-byte frames.
 */
export function runSharedBottleneck(
  seed: number,
  opts: {
    linkFlows: number;
    renoFlows: number;
    durationMs: number;
    warmupMs?: number;
    bandwidthBps?: number;
    queueBdp?: number;
    accessJitterMs?: number;
    config?: Partial<LinkConfig>;
  },
): SharedBottleneckResult {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const warm = opts.warmupMs ?? 5000;
  const bw = opts.bandwidthBps ?? 8_000_000;
  const delay = 10;
  const rtt = 2 * (delay + 2);
  const config: Partial<LinkConfig> = { perFlowPackets: 64, ...opts.config };
  const linkFlowBytes = new Array<number>(opts.linkFlows).fill(0);
  const receivers: RenoReceiver[] = [];
  const atWarm: number[] = [];
  const far = (dst: NodeId): boolean => dst === 5 || (dst >= 20 && dst < 20 + opts.renoFlows);
  let sender: LinkNode | undefined;
  sim.addNode(1, (host) => {
    const fill = filler(() => n, 5, opts.linkFlows);
    const n: LinkNode = new LinkNode(host, {
      config,
      transmit: (peer, b) => host.send(3, wrap(peer, 1, b)),
      onEvent: (_p, e) => {
        if (e.type === "up" || e.type === "writable") fill();
      },
    });
    n.driver.addNeighbour(5);
    n.receive = (_from, data) => {
      const u = unwrap(data);
      if (u) n.driver.receive(u.src, u.bytes);
    };
    sender = n;
    return n;
  });
  sim.addNode(5, (host) => {
    const n = new LinkNode(host, {
      config,
      transmit: (peer, b) => host.send(4, wrap(peer, 5, b)),
      onDelivery: (_p, d) => {
        if (host.clock.now() >= warm) {
          const f = d.header.srcPort;
          linkFlowBytes[f] = (linkFlowBytes[f] as number) + d.payload.length + 44;
        }
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
  for (let i = 0; i < opts.renoFlows; i++) {
    const src = 10 + i;
    const dst = 20 + i;
    sim.addNode(src, (host) => {
      const s = new RenoSender(host, {
        segmentBytes: FRAME,
        transmit: (b) => host.send(3, wrap(dst, src, b)),
      });
      host.schedule(host.clock.now() + 300 + 37 * i, () => s.start());
      return { receive: (_f: NodeId, d: Uint8Array) => s.receive(unwrap(d)?.bytes ?? new Uint8Array(0)) };
    });
    sim.addNode(dst, (host) => {
      const r = new RenoReceiver(host, (b) => host.send(4, wrap(src, dst, b)));
      receivers[i] = r;
      return { receive: (_f: NodeId, d: Uint8Array) => r.receive(unwrap(d)?.bytes ?? new Uint8Array(0)) };
    });
  }
  sim.addNode(3, (host) => new Router(host, (dst) => (far(dst) ? 4 : dst)));
  sim.addNode(4, (host) => new Router(host, (dst) => (far(dst) ? dst : 3)));
  const access: LinkParams = { delayMs: 1, jitterMs: opts.accessJitterMs ?? 0 };
  sim.connect(1, 3, access);
  sim.connect(4, 5, access);
  for (let i = 0; i < opts.renoFlows; i++) {
    sim.connect(10 + i, 3, access);
    sim.connect(4, 20 + i, access);
  }
  sim.connectOneWay(3, 4, {
    delayMs: delay,
    bandwidthBps: bw,
    overheadBytes: 8,
    queueBytes: Math.round(((bw / 8) * rtt * (opts.queueBdp ?? 1)) / 1000),
  });
  sim.connectOneWay(4, 3, { delayMs: delay });
  sim.addInvariant("bounds", (s) => {
    const l = s.program<LinkNode>(1)?.driver.link(5);
    return l && checkBounds(l);
  });
  sim.at(warm, () => {
    for (let i = 0; i < opts.renoFlows; i++) atWarm[i] = receivers[i]?.delivered ?? 0;
  });
  sim.run(warm + opts.durationMs);
  const renoBytes = receivers.map((r, i) => (r.delivered - (atWarm[i] ?? 0)) * FRAME);
  const all = [...linkFlowBytes, ...renoBytes];
  const total = all.reduce((a, b) => a + b, 0);
  const s2 = all.reduce((a, b) => a + b * b, 0);
  const fair = total / all.length;
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const link = sender?.driver.link(5);
  return {
    linkFlowBytes,
    renoBytes,
    fairShare: fair,
    overlayShare: mean(linkFlowBytes) / fair,
    renoShare: mean(renoBytes) / fair,
    jain: s2 === 0 ? 0 : (total * total) / (all.length * s2),
    flowCount: link?.flowCount ?? 0,
    linkReductions: link?.reliable.cc.reductions ?? 0,
  };
}

export interface LossyLinkResult {
  /** Goodput of the whole link after the warm-up, bytes per second. */
  bytesPerSec: number;
  /** Goodput of each flow, bytes per second. */
  flowBytesPerSec: number[];
  flowCount: number;
  /** The link's emulated flow count every 100 ms: [time ms, count]. */
  flowCounts: [number, number][];
  /** Largest congestion window seen after the warm-up, bytes. */
  maxCwnd: number;
}

/**
 * `flows` backlogged flows on one link 1→2 of 10 ms one way with independent loss `loss` both ways
 * and no bandwidth limit: the window alone sets the rate (the regime of the Mathis model).
 */
export function runLossyLink(
  seed: number,
  opts: {
    flows: number;
    loss: number;
    durationMs: number;
    warmupMs?: number;
    config?: Partial<LinkConfig>;
    /** When each flow stops offering data (ms); default never. */
    untilMs?: number[];
    /** Imposed on the link with `Link.setFlowCount` when it comes up. */
    fixedFlowCount?: number;
  },
): LossyLinkResult {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const warm = opts.warmupMs ?? 3000;
  const config: Partial<LinkConfig> = { perFlowPackets: 64, ...opts.config };
  const bytes = new Array<number>(opts.flows).fill(0);
  let sender: LinkNode | undefined;
  let maxCwnd = 0;
  const flowCounts: [number, number][] = [];
  sim.addNode(1, (host) => {
    const fill = filler(() => n, 2, opts.flows, opts.untilMs);
    const n: LinkNode = new LinkNode(host, {
      config,
      onEvent: (_p, e) => {
        if (e.type === "up" && opts.fixedFlowCount !== undefined)
          n.driver.link(2)?.setFlowCount(opts.fixedFlowCount);
        if (e.type === "up" || e.type === "writable") fill();
      },
    });
    n.driver.addNeighbour(2);
    sender = n;
    return n;
  });
  sim.addNode(2, (host) => {
    const n = new LinkNode(host, {
      config,
      onDelivery: (_p, d) => {
        if (host.clock.now() >= warm) {
          const f = d.header.srcPort;
          bytes[f] = (bytes[f] as number) + d.payload.length + 44;
          const w = sender?.driver.link(2)?.reliable.cc.cwnd ?? 0;
          if (w > maxCwnd) maxCwnd = w;
        }
        return true;
      },
    });
    n.driver.addNeighbour(1);
    return n;
  });
  sim.connect(1, 2, { delayMs: 10, loss: opts.loss });
  for (let t = 100; t <= warm + opts.durationMs; t += 100)
    sim.at(t, (s) => {
      flowCounts.push([t, s.program<LinkNode>(1)?.driver.link(2)?.flowCount ?? 0]);
    });
  sim.addInvariant("bounds", (s) => {
    const l = s.program<LinkNode>(1)?.driver.link(2);
    return l && checkBounds(l);
  });
  sim.run(warm + opts.durationMs);
  const secs = opts.durationMs / 1000;
  return {
    bytesPerSec: bytes.reduce((a, b) => a + b, 0) / secs,
    flowBytesPerSec: bytes.map((b) => b / secs),
    flowCount: sender?.driver.link(2)?.flowCount ?? 0,
    flowCounts,
    maxCwnd,
  };
}
