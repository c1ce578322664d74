/**
 * The "Done when" checks of issue 13's latency benchmark as same-run ratios: every figure is
 * divided by the model's or kernel TCP's figure of the same run, so a slow machine shows up in both.
 * Pure: from the benchmark's cases to rows.
 */

/** The fields of a latency case the targets read (see `LatencyCase` in latency.bench.ts). */
export interface TargetInput {
  readonly system: string;
  readonly linkMode: string;
  readonly rate: number;
  readonly lossPct: number;
  readonly sent: number;
  readonly delivered: number;
  readonly meanMs: number;
  readonly p99Ms: number;
}

export interface LatencyTarget {
  /** What is compared, e.g. "hop-by-hop mean / model (ordered) mean". */
  readonly check: string;
  /** The case: rate, link mode and loss. */
  readonly where: string;
  readonly measured: number;
  readonly bound: number;
  /** "≤" for ratios and ms-per-hop differences, "=" for delivered counts. */
  readonly op: "≤" | "=";
  /** undefined when a figure is missing (a row was left out or delivered nothing). */
  readonly met: boolean | undefined;
}

const HOPS = 4;

/** The targets, evaluated on `cases` (missing rows give `met: undefined`). */
export function latencyTargets(cases: readonly TargetInput[]): LatencyTarget[] {
  const find = (system: string, rate: number, lossPct: number, linkMode?: string) =>
    cases.find(
      (c) =>
        c.system === system &&
        c.rate === rate &&
        c.lossPct === lossPct &&
        (linkMode === undefined || c.linkMode === linkMode),
    );
  const out: LatencyTarget[] = [];
  const ratio = (
    check: string,
    where: string,
    a: number | undefined,
    b: number | undefined,
    bound: number,
  ): void => {
    const ok = a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0;
    const v = ok ? (a as number) / (b as number) : Number.NaN;
    out.push({ check, where, measured: v, bound, op: "≤", met: ok ? v <= bound : undefined });
  };

  // 5 % loss, rate-capped links, 1,000 messages/s
  const w5 = "1000/s rate-capped 5%";
  const hbh5 = find("hop-by-hop", 1000, 5);
  const dg5 = find("hop-by-hop-datagram", 1000, 5);
  const mOrd5 = find("model", 1000, 5, "hop-by-hop ordered");
  const mUn5 = find("model", 1000, 5, "hop-by-hop unordered");
  ratio("hop-by-hop mean / model (ordered) mean", w5, hbh5?.meanMs, mOrd5?.meanMs, 1.1);
  ratio("hop-by-hop p99 / model (ordered) p99", w5, hbh5?.p99Ms, mOrd5?.p99Ms, 1.3);
  for (const tcp of ["kernel-tcp-bbr", "kernel-tcp-cubic"]) {
    ratio(`hop-by-hop p99 / ${tcp} p99`, w5, hbh5?.p99Ms, find(tcp, 1000, 5)?.p99Ms, 0.5);
  }
  ratio("datagram p99 / model (unordered) p99", w5, dg5?.p99Ms, mUn5?.p99Ms, 1.3);

  // 100 messages/s, TCP-fair links: all delivered and mean within 1.1× the model
  for (const lossPct of [...new Set(cases.filter((c) => c.rate === 100).map((c) => c.lossPct))].sort(
    (a, b) => a - b,
  )) {
    const where = `100/s tcp-fair ${lossPct}%`;
    const h = find("hop-by-hop", 100, lossPct);
    out.push({
      check: "hop-by-hop delivered / sent",
      where,
      measured: h === undefined || h.sent === 0 ? Number.NaN : h.delivered / h.sent,
      bound: 1,
      op: "=",
      met: h === undefined ? undefined : h.delivered === h.sent,
    });
    ratio(
      "hop-by-hop mean / model (ordered) mean",
      where,
      h?.meanMs,
      find("model", 100, lossPct, "hop-by-hop ordered")?.meanMs,
      1.1,
    );
  }

  // 0 % loss: hop-by-hop adds at most 1 ms per hop over kernel TCP's mean
  for (const rate of [...new Set(cases.filter((c) => c.lossPct === 0).map((c) => c.rate))].sort(
    (a, b) => a - b,
  )) {
    const h = find("hop-by-hop", rate, 0);
    for (const tcp of ["kernel-tcp-bbr", "kernel-tcp-cubic"]) {
      const t = find(tcp, rate, 0);
      const ok = h !== undefined && t !== undefined && Number.isFinite(h.meanMs) && Number.isFinite(t.meanMs);
      const v = ok ? ((h as TargetInput).meanMs - (t as TargetInput).meanMs) / HOPS : Number.NaN;
      out.push({
        check: `(hop-by-hop mean − ${tcp} mean) / ${HOPS} hops, ms`,
        where: `${rate}/s ${h?.linkMode ?? "?"} 0%`,
        measured: v,
        bound: 1,
        op: "≤",
        met: ok ? v <= 1 : undefined,
      });
    }
  }
  return out;
}
