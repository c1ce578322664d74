/**
 * `pnpm demo`: a simulator scenario (until the real overlay arrives). Five nodes in a line,
 * 1 - 2 - 3 - 4 - 5 (H = 4 hops), with 10 ms lossy links. Node 1 sends a message to node 5 every 10 ms, two ways:
 *
 * - hop-by-hop: every hop acknowledges to the previous one, which retransmits after 25 ms
 *   (one link round trip plus 5 ms) until acknowledged (the Spines way);
 * - end-to-end: the middle nodes just forward; node 5 acknowledges to node 1, which retransmits
 *   after 90 ms (one path round trip plus 10 ms).
 *
 * It prints the one-way latency of first delivery at node 5 (mean, p50, p99, max) beside the exact
 * mean and p99 of the recovery-latency model (independent loss, only data losses delay), and the seed: the same seed prints the same figures.
 */
import { type LinkParams, Simulator } from "@spines-ts/netsim";
import type { Cancel, Host, NodeId, NodeProgram } from "@spines-ts/primitives";

const SEED = Number(process.env.DEMO_SEED ?? 1);
const PATH = [1, 2, 3, 4, 5] as const;
const DELAY_MS = 10;
const MESSAGES = 2_000;
const GAP_MS = 10;
const HOP_RTO_MS = 2 * DELAY_MS + 5;
const E2E_RTO_MS = 2 * DELAY_MS * (PATH.length - 1) + 10;
const MAX_UNACKED = 4_096; // bound on every retransmit table
const SEEN_WINDOW = 4_096; // bound on every duplicate filter

// A packet: [kind u8][message id u32][sent-at f64]; kind 1 = data, 2 = ack.
const DATA = 1;
const ACK = 2;
function packet(kind: number, id: number, sentAt: number): Uint8Array {
  const b = new Uint8Array(13);
  const v = new DataView(b.buffer);
  v.setUint8(0, kind);
  v.setUint32(1, id);
  v.setFloat64(5, sentAt);
  return b;
}
function parse(b: Uint8Array): { kind: number; id: number; sentAt: number } | undefined {
  if (b.length !== 13) return undefined; // bad input is dropped, never thrown
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { kind: v.getUint8(0), id: v.getUint32(1), sentAt: v.getFloat64(5) };
}

/** A bounded duplicate filter over increasing ids: remembers the last SEEN_WINDOW ids. */
class Seen {
  readonly #ids = new Set<number>();
  readonly #order: number[] = [];
  add(id: number): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    this.#order.push(id);
    if (this.#order.length > SEEN_WINDOW) this.#ids.delete(this.#order.shift() as number);
    return true;
  }
}

const latencies = { hop: [] as number[], e2e: [] as number[] };
let transmissions = 0;

function neighbours(id: NodeId): { prev: NodeId | undefined; next: NodeId | undefined } {
  const i = PATH.indexOf(id as (typeof PATH)[number]);
  return { prev: PATH[i - 1], next: PATH[i + 1] };
}

/** Source node: emits one message every GAP_MS; `deliver` decides how it goes to the next hop. */
function startSource(host: Host, emit: (id: number) => void): void {
  let id = 0;
  const tick = (): void => {
    emit(id++);
    if (id < MESSAGES) host.schedule(host.clock.now() + GAP_MS, tick);
  };
  host.schedule(0, tick);
}

/** Hop-by-hop: each hop keeps the messages it forwarded until the next hop acknowledges them. */
function hopByHop(host: Host): NodeProgram {
  const { prev, next } = neighbours(host.id);
  const unacked = new Map<number, Cancel>();
  const seen = new Seen();
  const forward = (id: number, sentAt: number): void => {
    if (next === undefined) return;
    if (unacked.size >= MAX_UNACKED) return; // table full: the message is dropped here
    const send = (): void => {
      transmissions++;
      host.send(next, packet(DATA, id, sentAt));
      unacked.set(id, host.schedule(host.clock.now() + HOP_RTO_MS, send));
    };
    send();
  };
  if (prev === undefined) startSource(host, (id) => forward(id, host.clock.now()));
  return {
    receive(from, bytes) {
      const p = parse(bytes);
      if (p === undefined) return;
      if (p.kind === ACK) {
        unacked.get(p.id)?.();
        unacked.delete(p.id);
        return;
      }
      host.send(from, packet(ACK, p.id, p.sentAt));
      if (!seen.add(p.id)) return;
      if (next === undefined) latencies.hop.push(host.clock.now() - p.sentAt);
      else forward(p.id, p.sentAt);
    },
  };
}

/** End-to-end: the middle forwards blindly both ways; the destination acks to the source. */
function endToEnd(host: Host): NodeProgram {
  const { prev, next } = neighbours(host.id);
  const unacked = new Map<number, Cancel>();
  const seen = new Seen();
  if (prev === undefined)
    startSource(host, (id) => {
      const sentAt = host.clock.now();
      if (unacked.size >= MAX_UNACKED) return;
      const send = (): void => {
        transmissions++;
        host.send(next as NodeId, packet(DATA, id, sentAt));
        unacked.set(id, host.schedule(host.clock.now() + E2E_RTO_MS, send));
      };
      send();
    });
  return {
    receive(_from, bytes) {
      const p = parse(bytes);
      if (p === undefined) return;
      if (p.kind === ACK) {
        if (prev !== undefined) host.send(prev, bytes);
        else {
          unacked.get(p.id)?.();
          unacked.delete(p.id);
        }
        return;
      }
      if (next !== undefined) {
        transmissions++;
        host.send(next, bytes);
        return;
      }
      host.send(prev as NodeId, packet(ACK, p.id, p.sentAt));
      if (seen.add(p.id)) latencies.e2e.push(host.clock.now() - p.sentAt);
    },
  };
}

function run(kind: "hop" | "e2e", loss: number): { sim: Simulator; lat: number[]; tx: number } {
  latencies[kind] = [];
  transmissions = 0;
  const sim = new Simulator({ seed: SEED });
  const link: LinkParams = { delayMs: DELAY_MS, loss };
  for (let i = 0; i + 1 < PATH.length; i++) sim.connect(PATH[i] as number, PATH[i + 1] as number, link);
  for (const id of PATH) sim.addNode(id, kind === "hop" ? hopByHop : endToEnd);
  sim.addInvariant("no message arrives faster than the path delay", () => {
    const l = latencies[kind];
    const last = l[l.length - 1];
    return last === undefined || last >= DELAY_MS * (PATH.length - 1) - 1e-9
      ? undefined
      : `latency ${last} ms`;
  });
  sim.run(MESSAGES * GAP_MS + 10_000);
  return { sim, lat: latencies[kind], tx: transmissions };
}

function summary(xs: number[]): { mean: number; p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? Number.NaN;
  return {
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    p50: q(0.5),
    p99: q(0.99),
    max: s[s.length - 1] ?? Number.NaN,
  };
}

/**
 * The model's exact latency distribution: H·d plus T times the number of retransmissions. Hop by hop
 * that number is a sum of H geometric counts (negative binomial); end to end it is one geometric count
 * with success probability q^H. Returns the mean and the 99th percentile.
 */
function model(kind: "hop" | "e2e", loss: number): { mean: number; p99: number } {
  const H = PATH.length - 1;
  const q = 1 - loss;
  const T = kind === "hop" ? HOP_RTO_MS : E2E_RTO_MS;
  const pmf = (k: number): number => {
    if (kind === "e2e") return (1 - q ** H) ** k * q ** H;
    let c = 1; // C(k + H - 1, k)
    for (let i = 1; i <= k; i++) c = (c * (i + H - 1)) / i;
    return c * q ** H * loss ** k;
  };
  let mean = 0;
  let cdf = 0;
  let p99 = Number.NaN;
  for (let k = 0; k < 200; k++) {
    const pk = pmf(k);
    mean += pk * (H * DELAY_MS + k * T);
    cdf += pk;
    if (Number.isNaN(p99) && cdf >= 0.99) p99 = H * DELAY_MS + k * T;
  }
  return { mean, p99 };
}

const started = performance.now();
console.log(`spines-ts demo: hop-by-hop vs end-to-end recovery in the simulator (seed ${SEED})`);
console.log(
  `path ${PATH.join(" - ")}, ${DELAY_MS} ms per link, ${MESSAGES} messages every ${GAP_MS} ms; ` +
    `hop retransmit ${HOP_RTO_MS} ms, end-to-end retransmit ${E2E_RTO_MS} ms\n`,
);
const header = [
  "loss/link",
  "recovery",
  "delivered",
  "mean ms",
  "p50 ms",
  "p99 ms",
  "max ms",
  "model mean / p99",
  "tx/msg",
  "trace",
];
const rows: string[][] = [header];
for (const loss of [0.01, 0.05]) {
  for (const kind of ["hop", "e2e"] as const) {
    const { sim, lat, tx } = run(kind, loss);
    const s = summary(lat);
    rows.push([
      `${(loss * 100).toFixed(0)} %`,
      kind === "hop" ? "hop-by-hop" : "end-to-end",
      `${lat.length}/${MESSAGES}`,
      s.mean.toFixed(1),
      s.p50.toFixed(1),
      s.p99.toFixed(1),
      s.max.toFixed(1),
      `${model(kind, loss).mean.toFixed(1)} / ${model(kind, loss).p99.toFixed(0)}`,
      (tx / MESSAGES).toFixed(2),
      sim.traceHash(),
    ]);
  }
}
const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
for (const [n, r] of rows.entries()) {
  console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  "));
  if (n === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
console.log(
  `\nmodel: H = ${PATH.length - 1} hops of ${DELAY_MS} ms, independent loss, retransmit timers as above (reference/performance.md §1).` +
    `\ntx/msg: data transmissions per message summed over the ${PATH.length - 1} links (ideal: ${PATH.length - 1}).` +
    `\nSame seed, same trace hashes: DEMO_SEED=${SEED} pnpm demo. Took ${((performance.now() - started) / 1000).toFixed(1)} s.`,
);
