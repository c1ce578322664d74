/**
 * `pnpm bench latency [--quick] [--only tcp,overlay,model]` (issue 13, benchmark 1; needs root).
 * Partial runs: `--phase tcp-fair|rate-capped`, `--loss 0,5`, `--seconds S`, `--systems
 * hop-by-hop,hop-by-hop-datagram,e2e-overlay` (overlay rows), `--diag` (every daemon's link counters
 * during each overlay case, on stderr and in the JSON).
 *
 * Five hosts in a line (four hops), every link emulated by netlab at 10 ms one way with 0 %, 1 % and
 * 5 % independent loss per link and direction. A steady stream of 1,000-byte messages from the first
 * to the last host, one-way latency per message (all namespaces share one clock):
 *   - at 100 messages/s for 60 s with the overlay's default (TCP-fair) links, and
 *   - at 1,000 messages/s for 20 s with rate-capped overlay links.
 * Rows: (a) spines-node reliable stream over hop-by-hop reliable links; (b) reliable datagrams over
 * reliable links; (c) a stream over best-effort links (end-to-end recovery only); (d) kernel TCP
 * (BBR and CUBIC) end to end through the same emulated links, routed by the kernel; (e) the model
 * (port of latency_model.py). The emulator's own added latency is measured in the same run and
 * printed beside the results.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { runBench, type Table } from "@spines-ts/bench";
import {
  type ModelSummary,
  measureEmulatorOverhead,
  model,
  probe,
  summarize,
  Testbed,
} from "../src/index.ts";
import { latencyTargets } from "./latency-targets.ts";
import { overheadTable } from "./overhead-table.ts";
import { type OverlayCase, runOverlayCases } from "./overlay-line.ts";
import { benchPriority } from "./priority.ts";
import { latencyChart } from "./svg.ts";

export interface LatencyCase {
  system:
    | "hop-by-hop"
    | "hop-by-hop-datagram"
    | "e2e-overlay"
    | "kernel-tcp-bbr"
    | "kernel-tcp-cubic"
    | "model";
  /** Overlay link mode ("tcp-fair" or "rate-capped"); "kernel" for TCP; the model's scheme for the model. */
  linkMode: string;
  rate: number;
  lossPct: number;
  durationSec: number;
  sent: number;
  delivered: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Standard deviation of the one-way latency. */
  jitterMs: number;
  /** RFC 3550 interarrival jitter. */
  rfc3550JitterMs: number;
  /** True when the system did not carry the offered rate (messages missing or left unsent at the end). */
  fellBehind?: boolean;
  /** 1-minute load average of the machine at the end of the case (a shared machine distorts timing). */
  loadAvg1?: number;
  note?: string;
}

const HOPS = 4;
const DELAY = 10;
const DEFAULT_LOSSES = [0, 1, 5];

function modelCase(rate: number, lossPct: number, scheme: string, s: ModelSummary, n: number): LatencyCase {
  return {
    system: "model",
    linkMode: scheme,
    rate,
    lossPct,
    durationSec: n / rate,
    sent: n,
    delivered: n,
    meanMs: s.meanMs,
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    p999Ms: s.p999Ms,
    maxMs: Number.NaN,
    jitterMs: s.sdMs,
    rfc3550JitterMs: Number.NaN,
  };
}

await runBench("latency", async (ctx) => {
  const quick = ctx.quick;
  const nice = benchPriority(ctx.args);
  const onlyArg = ctx.args.find((_a, i) => ctx.args[i - 1] === "--only");
  const only = new Set((onlyArg ?? "model,tcp,overlay").split(","));
  const argOf = (k: string) => ctx.args.find((_a, i) => ctx.args[i - 1] === k);
  // Partial runs (diagnostics; a full run is the reference): --phase tcp-fair|rate-capped,
  // --loss 0,5, --systems hop-by-hop,hop-by-hop-datagram,e2e-overlay, --seconds S, --diag (every
  // daemon's link counters per overlay case, on stderr and in the JSON).
  const phases = [
    { rate: 100, durationSec: quick ? 5 : 60, linkMode: "tcp-fair" as const },
    { rate: 1000, durationSec: quick ? 4 : 20, linkMode: "rate-capped" as const },
  ]
    .filter((p) => argOf("--phase") === undefined || p.linkMode === argOf("--phase"))
    .map((p) => (argOf("--seconds") === undefined ? p : { ...p, durationSec: Number(argOf("--seconds")) }));
  const LOSSES = argOf("--loss")?.split(",").map(Number) ?? DEFAULT_LOSSES;
  const overlaySystems = argOf("--systems")?.split(",");
  const diag: { case: string; links: Record<string, unknown>[] }[] = [];
  const cases: LatencyCase[] = [];

  // (e) the model: ordered (stream) and unordered (datagram) figures, 1 ms detection gap, 200 ms RTO
  if (only.has("model")) {
    const n = quick ? 20_000 : 200_000;
    for (const ph of phases) {
      for (const lossPct of LOSSES) {
        for (const row of model({
          hops: HOPS,
          delayMs: DELAY,
          loss: lossPct / 100,
          rate: ph.rate,
          gapMs: 1,
          rtoMs: 200,
          n,
        })) {
          cases.push(modelCase(ph.rate, lossPct, `${row.scheme} ordered`, row.ordered, n));
          if (row.scheme === "hop-by-hop")
            cases.push(modelCase(ph.rate, lossPct, `${row.scheme} unordered`, row.unordered, n));
        }
      }
    }
  }

  // the emulator's own cost, same run
  ctx.progress(0.02, "emulator overhead");
  const overhead = await measureEmulatorOverhead({
    prefix: "nllato",
    rates: quick ? [1000] : [1000, 10_000],
    durationMs: quick ? 1500 : 4000,
    delayMs: DELAY,
  });

  const hosts = ["h1", "h2", "h3", "h4", "h5"];
  const tb = await Testbed.create({
    prefix: "nllat",
    replace: true,
    hosts,
    links: hosts.slice(1).map((h, i) => ({
      a: hosts[i] as string,
      b: h,
      delayMs: DELAY,
      subnet: `10.210.${i + 1}.0/24`,
      seed: 100 + i,
    })),
  });
  const setLoss = async (lossPct: number) => {
    for (const net of tb.nets) await tb.setLink(net, { lossPct });
  };
  const total = phases.reduce((a, p) => a + p.durationSec, 0) * LOSSES.length * 5;
  let done = 0;
  try {
    // (d) kernel TCP, routed by the kernel, BBR and CUBIC
    if (only.has("tcp")) {
      const available = async () =>
        (await tb.exec("h1", ["sysctl", "-n", "net.ipv4.tcp_available_congestion_control"])).stdout;
      if (!(await available()).includes("bbr")) await tb.exec("h1", ["modprobe", "tcp_bbr"]);
      const ccs: ("bbr" | "cubic")[] = ["bbr", "cubic"];
      if (!(await available()).includes("bbr")) {
        console.error("latency: tcp_bbr is not available (modprobe tcp_bbr failed); BBR rows are left out");
        ccs.splice(ccs.indexOf("bbr"), 1);
      }
      for (const cc of ccs) {
        for (const h of hosts) await tb.exec(h, ["sysctl", "-qw", `net.ipv4.tcp_congestion_control=${cc}`]);
        for (const ph of phases) {
          for (const lossPct of LOSSES) {
            ctx.progress(done / total, `kernel TCP ${cc} ${ph.rate}/s ${lossPct}%`);
            await setLoss(lossPct);
            const r = await probe(tb, {
              mode: "tcp",
              from: "h1",
              to: "h5",
              address: tb.hostAddress("h5", "h4-h5"),
              rate: ph.rate,
              durationMs: ph.durationSec * 1000,
              drainMs: 5000,
              port: 7500,
            });
            done += ph.durationSec;
            const s = summarize(r.latMs);
            cases.push({
              system: cc === "bbr" ? "kernel-tcp-bbr" : "kernel-tcp-cubic",
              linkMode: "kernel",
              rate: ph.rate,
              lossPct,
              durationSec: ph.durationSec,
              sent: r.sent,
              delivered: s.delivered,
              meanMs: s.meanMs,
              p50Ms: s.p50Ms,
              p99Ms: s.p99Ms,
              p999Ms: s.p999Ms,
              maxMs: s.maxMs,
              jitterMs: s.sdMs,
              rfc3550JitterMs: s.rfc3550JitterMs,
              fellBehind: s.delivered < r.expected || r.unsentBytes > 0,
              loadAvg1: loadavg()[0] ?? Number.NaN,
              ...(r.unsentBytes > 0
                ? { note: `${Math.round(r.unsentBytes / 1000)} messages still unsent 5 s after the end` }
                : {}),
            });
          }
        }
      }
      for (const h of hosts) await tb.exec(h, ["sysctl", "-qw", "net.ipv4.tcp_congestion_control=bbr"]);
    }

    // (a)-(c) spines-node daemons on the same links
    if (only.has("overlay")) {
      const overlay: OverlayCase[] = await runOverlayCases(tb, hosts, {
        phases,
        losses: LOSSES,
        setLoss,
        progress: (label) => {
          ctx.progress(done / total, label);
        },
        onCaseDone: (sec) => {
          done += sec;
        },
        ...(overlaySystems !== undefined ? { systems: overlaySystems } : {}),
        ...(ctx.args.includes("--diag")
          ? {
              diag: (label: string, links: Record<string, unknown>[]) => {
                diag.push({ case: label, links });
                console.error(`diag ${label}: ${JSON.stringify(links)}`);
              },
            }
          : {}),
      });
      for (const o of overlay) {
        const s = summarize(o.latMs);
        cases.push({
          system: o.system,
          linkMode: o.linkMode,
          rate: o.rate,
          lossPct: o.lossPct,
          durationSec: o.durationSec,
          sent: o.sent,
          delivered: s.delivered,
          meanMs: s.meanMs,
          p50Ms: s.p50Ms,
          p99Ms: s.p99Ms,
          p999Ms: s.p999Ms,
          maxMs: s.maxMs,
          jitterMs: s.sdMs,
          rfc3550JitterMs: s.rfc3550JitterMs,
          fellBehind: s.delivered < o.sent,
          loadAvg1: o.loadAvg1,
          ...(o.note !== undefined ? { note: o.note } : {}),
        });
      }
    }
  } finally {
    await tb.destroy();
  }

  const order = [
    "hop-by-hop",
    "hop-by-hop-datagram",
    "e2e-overlay",
    "kernel-tcp-bbr",
    "kernel-tcp-cubic",
    "model",
  ];
  cases.sort(
    (a, b) => a.rate - b.rate || a.lossPct - b.lossPct || order.indexOf(a.system) - order.indexOf(b.system),
  );
  const tables: Table[] = phases.map((ph) => ({
    title: `latency: 1,000-byte messages, 4 hops × 10 ms, ${ph.rate} messages/s for ${ph.durationSec} s (ms)`,
    columns: [
      "system",
      "link mode",
      "loss %",
      "delivered",
      "sent",
      "mean",
      "p50",
      "p99",
      "p99.9",
      "max",
      "sd",
      "rfc3550",
    ],
    rows: cases
      .filter((c) => c.rate === ph.rate)
      .map((c) => [
        c.system + (c.fellBehind ? " (behind)" : ""),
        c.linkMode,
        c.lossPct,
        c.delivered,
        c.sent,
        c.meanMs,
        c.p50Ms,
        c.p99Ms,
        c.p999Ms,
        c.maxMs,
        c.jitterMs,
        c.rfc3550JitterMs,
        c.loadAvg1 ?? "",
      ]),
    notes: [
      "model: port of latency_model.py (1 ms detection gap, 200 ms RTO); 'ordered' compares with streams/TCP, 'unordered' with datagrams",
      "load: the machine's 1-minute load average when the case ended (2 cores; above ~2 every figure is inflated)",
      "(behind): fewer messages delivered than sent, or TCP still held unsent data 5 s after the last send",
    ],
  }));
  tables.push(
    overheadTable(
      "netlab emulator overhead, same run: one-way UDP latency, 1,000-byte datagrams (ms)",
      overhead,
      [
        `every message above crosses 4 emulated links of ${DELAY} ms: about 4× the emulated-delayed 'added mean' is emulator cost`,
      ],
    ),
  );
  const targets = latencyTargets(cases);
  const loads = cases
    .map((c) => c.loadAvg1)
    .filter((x): x is number => x !== undefined && Number.isFinite(x));
  tables.push({
    title: "latency: the issue's targets as same-run ratios (model and kernel TCP measured in this run)",
    columns: ["check", "case", "measured", "bound", "met"],
    rows: targets.map((t) => [
      t.check,
      t.where,
      Number.isFinite(t.measured) ? Math.round(t.measured * 1000) / 1000 : "–",
      `${t.op} ${t.bound}`,
      t.met === undefined ? "no data" : t.met ? "yes" : "NO",
    ]),
    notes: [
      `load average during the run: ${loads.length > 0 ? `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}` : "?"} (2 cores: above ~2 the overlay daemons, the emulator and socat compete for CPU and every figure is inflated)`,
      `niceness of the bench, the daemons and the probes: ${nice} (the emulator's: -10; bench/priority.ts; --nice N)`,
    ],
  });
  const svg = latencyChart(cases);
  const resultsDir = join(import.meta.dirname, "..", "..", "..", "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const svgFile = join(resultsDir, "latency.svg");
  writeFileSync(svgFile, svg);
  console.log(`wrote ${svgFile}`);
  return {
    tables,
    data: {
      hops: HOPS,
      delayMs: DELAY,
      messageBytes: 1000,
      cases,
      nice,
      targets,
      emulatorOverhead: overhead,
      ...(diag.length > 0 ? { diag } : {}),
    },
  };
});
