/**
 * Monte-Carlo model of message latency over an H-hop path with independent per-hop loss, ported from
 * the project's reference script `latency_model.py` (performance reference, addendum "ordered
 * delivery"), including its random-number stream: Python's `random.Random(seed)` (MT19937 seeded by
 * `init_by_array`, 53-bit `random()`), so the same parameters give the same figures.
 *
 * Hop-by-hop: a packet lost on a hop is resent on that hop after one link round trip plus a detection
 * gap. End-to-end: a packet lost anywhere is resent from the source after a path round trip plus the
 * gap (ideal detection) or after a fixed retransmission timeout. "unordered" is each message's own
 * latency; "ordered" adds head-of-line blocking (a byte stream delivers message i only after every
 * earlier one). Pure: no I/O.
 */

/** MT19937 with CPython's seeding and `random()`. */
export class PyRandom {
  private readonly mt = new Uint32Array(624);
  private i = 625;
  constructor(seed: number) {
    // CPython: init_by_array(key) with key = 32-bit words of |seed| (least significant first)
    const key: number[] = [];
    let s = Math.abs(Math.trunc(seed));
    do {
      key.push(s % 4294967296);
      s = Math.floor(s / 4294967296);
    } while (s > 0);
    this.initGenrand(19650218);
    const mt = this.mt;
    let i = 1;
    let j = 0;
    for (let k = Math.max(624, key.length); k > 0; k--) {
      const prev = (mt[i - 1] as number) ^ ((mt[i - 1] as number) >>> 30);
      mt[i] = (((mt[i] as number) ^ Math.imul(prev, 1664525)) + (key[j] as number) + j) >>> 0;
      i++;
      j++;
      if (i >= 624) {
        mt[0] = mt[623] as number;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const prev = (mt[i - 1] as number) ^ ((mt[i - 1] as number) >>> 30);
      mt[i] = (((mt[i] as number) ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) {
        mt[0] = mt[623] as number;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    this.i = 624;
  }
  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = (mt[i - 1] as number) ^ ((mt[i - 1] as number) >>> 30);
      mt[i] = (Math.imul(prev, 1812433253) + i) >>> 0;
    }
    this.i = 624;
  }
  private genrand(): number {
    const mt = this.mt;
    if (this.i >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = ((mt[k] as number) & 0x80000000) | ((mt[(k + 1) % 624] as number) & 0x7fffffff);
        mt[k] = (mt[(k + 397) % 624] as number) ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.i = 0;
    }
    let y = mt[this.i++] as number;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
  /** Uniform in [0, 1) with 53 bits, exactly as CPython's random.random(). */
  random(): number {
    const a = this.genrand() >>> 5;
    const b = this.genrand() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

export type Scheme = "hop-by-hop" | "e2e-ideal" | "e2e-rto";

export interface ModelParams {
  hops?: number;
  delayMs?: number;
  /** Per-hop loss probability (0..1). */
  loss?: number;
  /** Messages per second. */
  rate?: number;
  /** Loss-detection delay added to each recovery (ms). */
  gapMs?: number;
  rtoMs?: number;
  n?: number;
  seed?: number;
}

export interface ModelSummary {
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  sdMs: number;
}

export interface ModelRow {
  scheme: Scheme;
  unordered: ModelSummary;
  ordered: ModelSummary;
}

const round1 = (x: number): number => Number(x.toFixed(1));

function summary(xs: number[]): ModelSummary {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const pick = (q: number) => s[Math.min(n - 1, Math.floor(q * n))] as number;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  return {
    meanMs: round1(mean),
    p50Ms: round1(pick(0.5)),
    p99Ms: round1(pick(0.99)),
    p999Ms: round1(pick(0.999)),
    sdMs: round1(sd),
  };
}

/** Simulates one scheme; returns per-message (unordered) and in-order (ordered) summaries. */
export function simulate(scheme: Scheme, p: ModelParams = {}): ModelRow {
  const hops = p.hops ?? 4;
  const d = p.delayMs ?? 10;
  const loss = p.loss ?? 0.05;
  const gap = p.gapMs ?? 1;
  const rto = p.rtoMs ?? 200;
  const n = p.n ?? 200_000;
  const rng = new PyRandom(p.seed ?? 1);
  const interval = 1000 / (p.rate ?? 1000);
  const unordered: number[] = new Array(n);
  const ordered: number[] = new Array(n);
  let horizon = 0;
  for (let i = 0; i < n; i++) {
    const sent = i * interval;
    let t = sent;
    if (scheme === "hop-by-hop") {
      for (let h = 0; h < hops; h++) {
        while (rng.random() < loss) t += 2 * d + gap;
        t += d;
      }
    } else {
      const retry = scheme === "e2e-rto" ? rto : 2 * hops * d + gap;
      for (;;) {
        let ok = true;
        for (let h = 0; h < hops; h++) {
          if (!(rng.random() >= loss)) {
            ok = false;
            break; // Python's all() stops at the first loss
          }
        }
        if (ok) break;
        t += retry;
      }
      t += hops * d;
    }
    unordered[i] = t - sent;
    horizon = Math.max(horizon, t);
    ordered[i] = horizon - sent;
  }
  return { scheme, unordered: summary(unordered), ordered: summary(ordered) };
}

/** All three schemes, as the reference script prints them. */
export function model(p: ModelParams = {}): ModelRow[] {
  return (["hop-by-hop", "e2e-ideal", "e2e-rto"] as const).map((s) => simulate(s, p));
}
