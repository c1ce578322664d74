/**
 * `pnpm bench fairness [--quick]` (issue 13, benchmark 2; needs root and iperf3).
 *
 * Two hosts joined by one netlab emulated link: 10 ms one way (20 ms RTT), a 20 Mbit/s rate with a
 * bounded queue (the bottleneck). Host `src` runs spines-node node 1 and the iperf3 clients, host
 * `dst` runs node 2 and the iperf3 server. The daemons use their default (TCP-fair) link congestion
 * control; each overlay flow is a reliable session stream written as fast as the client's
 * back-pressure allows. Cases: one overlay flow with 1, 2 and 4 kernel TCP flows (CUBIC and BBR,
 * iperf3 `-C`), then two overlay flows with two TCP flows; baselines in the same run: one TCP flow
 * alone and one overlay flow alone. Reported per case: each flow's throughput, the overlay's share
 * over its fair share (the measured total divided equally among all flows), and Jain's index.
 * Reference cases in the same run replace the overlay flow by one kernel Reno flow (the algorithm
 * of the overlay's default links) against the same 1, 2 and 4 CUBIC or BBR flows: what a loss-based
 * AIMD flow gets on this bottleneck, the yardstick for the overlay rows (`--no-reference` skips them).
 * The default links emulate one TCP flow per active overlay flow (MulTCP, docs/congestion.md): the
 * cases with two or four overlay flows run with them ("N-flow" links) and, beside them, on a second
 * pair of daemons whose links are one TCP flow whatever they carry (`maxEmulatedFlows: 1`,
 * "1-flow" links, the behaviour before the N-flow mode; `--no-single` skips those).
 * `--link-cc newreno|cubic|bbr` sets the overlay links' congestion controller (`link.congestion`;
 * default: the daemon's, NewReno); `--only-cc cubic|bbr` keeps the cases against that TCP only.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { runBench, type Table } from "@spines-ts/bench";
import { SpinesClient } from "@spines-ts/spines-node/client";
import { Testbed } from "../src/index.ts";
import { fairnessChart } from "./charts.ts";
import { startOverlay } from "./overlay-graph.ts";
import { benchPriority } from "./priority.ts";

export interface FairnessCase {
  /**
   * "baseline" rows measure the link with one kind of flow alone; "reference" rows put one kernel
   * Reno flow (`renoMbit`) where the overlay flow would be.
   */
  kind: "baseline" | "shared" | "reference";
  /**
   * Congestion control of the overlay links: "n-flow" = the default (a link emulates one TCP flow
   * per active overlay flow), "1-flow" = `maxEmulatedFlows: 1` (one TCP flow per link). The two
   * are the same with one overlay flow.
   */
  linkMode: "n-flow" | "1-flow";
  tcpFlows: number;
  tcpCc: "cubic" | "bbr" | "none";
  overlayFlows: number;
  durationSec: number;
  /** Throughput of each flow over the measured window, Mbit/s. */
  overlayMbit: number[];
  tcpMbit: number[];
  totalMbit: number;
  /** Reference cases: the kernel Reno flow's throughput, Mbit/s. */
  renoMbit?: number[];
  /** Total overlay throughput over (overlay flows × total / all flows); NaN without overlay flows. */
  overlayShare: number;
  /** Jain's fairness index over every flow of the case (each overlay session counts as a flow). */
  jain: number;
  /**
   * Per-link view (the overlay link, however many sessions it carries, as one flow): overlay
   * total over total / (1 + TCP flows), and Jain over [overlay total, ...TCP flows]. Equal to
   * overlayShare and jain with one overlay flow.
   */
  overlayLinkShare: number;
  jainLink: number;
  /** Jain among the overlay sessions alone (NaN with fewer than two). */
  jainOverlay: number;
  /** Reference cases: the Reno flow's throughput over its fair share (total / all flows). */
  renoShare?: number;
  loadAvg1: number;
  note?: string;
}

const RATE_MBIT = 20;
const DELAY_MS = 10;
/** Bottleneck queue: about two bandwidth-delay products of 1,500-byte packets (BDP = 50 KB). */
const QUEUE_PACKETS = 64;
const IPERF_PORT = 5201;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function jain(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = xs.reduce((a, b) => a + b, 0);
  const s2 = xs.reduce((a, b) => a + b * b, 0);
  return s2 === 0 ? Number.NaN : (s * s) / (xs.length * s2);
}

interface OverlayFlow {
  /** Bytes received so far. */
  bytes(): number;
  stop(): Promise<void>;
  error(): string | undefined;
}

/** One saturating reliable stream from node 1 to node 2. */
async function overlayFlow(txSock: string, rxSock: string, port: number): Promise<OverlayFlow> {
  const rx = await SpinesClient.connect({ path: rxSock });
  const tx = await SpinesClient.connect({ path: txSock });
  let err: string | undefined;
  rx.on("error", (e: unknown) => {
    err ??= String(e);
  });
  tx.on("error", (e: unknown) => {
    err ??= String(e);
  });
  const l = await rx.listen(port);
  const [s, peer] = await Promise.all([tx.connect(2, port), l.accept()]);
  let got = 0;
  let running = true;
  peer.on("data", (d: Buffer) => {
    got += d.length;
  });
  peer.on("error", (e: unknown) => {
    err ??= String(e);
  });
  s.on("error", (e: unknown) => {
    err ??= String(e);
  });
  const chunk = Buffer.alloc(16 * 1024, 0x5a);
  const pump = async () => {
    while (running) {
      if (!s.write(chunk)) {
        await new Promise<void>((r) => {
          const done = () => {
            clearTimeout(t);
            s.off("drain", done);
            r();
          };
          const t = setTimeout(done, 200);
          s.once("drain", done);
        });
      }
    }
  };
  const pumping = pump().catch((e: unknown) => {
    err ??= String(e);
  });
  return {
    bytes: () => got,
    error: () => err,
    stop: async () => {
      running = false;
      await pumping;
      s.destroy();
      peer.destroy();
      await l.close().catch(() => {});
      rx.close();
      tx.close();
    },
  };
}

interface IperfInterval {
  streams: { start: number; end: number; bytes: number; bits_per_second: number }[];
}

/** Per-stream throughput (Mbit/s) of an iperf3 `-J` report over the intervals from `fromSec` on. */
function iperfMbit(stdout: string, flows: number, fromSec: number): { mbit: number[]; error?: string } {
  const j = JSON.parse(stdout) as { intervals?: IperfInterval[]; error?: string };
  const ivs = (j.intervals ?? []).filter((iv) => (iv.streams[0]?.start ?? 0) >= fromSec - 0.01);
  const mbit = Array.from({ length: flows }, (_, s) => {
    const bytes = ivs.reduce((a, iv) => a + (iv.streams[s]?.bytes ?? 0), 0);
    const secs = ivs.reduce((a, iv) => a + ((iv.streams[s]?.end ?? 0) - (iv.streams[s]?.start ?? 0)), 0);
    return secs > 0 ? (bytes * 8) / secs / 1e6 : 0;
  });
  return j.error !== undefined ? { mbit, error: j.error } : { mbit };
}

await runBench("fairness", async (ctx) => {
  const quick = ctx.quick;
  const nice = benchPriority(ctx.args);
  const durationSec = quick ? 5 : 20;
  const warmSec = quick ? 1 : 2;
  const reference = !ctx.args.includes("--no-reference");
  const single = !ctx.args.includes("--no-single");
  const argValue = (flag: string): string | undefined => {
    const i = ctx.args.indexOf(flag);
    return i >= 0 ? ctx.args[i + 1] : undefined;
  };
  const linkCc = argValue("--link-cc");
  if (linkCc !== undefined && !["newreno", "cubic", "bbr"].includes(linkCc))
    throw new Error(`--link-cc must be newreno, cubic or bbr, got ${linkCc}`);
  const onlyCc = argValue("--only-cc");
  if (onlyCc !== undefined && !["cubic", "bbr"].includes(onlyCc))
    throw new Error(`--only-cc must be cubic or bbr, got ${onlyCc}`);
  const linkCongestion = linkCc === undefined ? {} : { congestion: { kind: linkCc } };

  const tb = await Testbed.create({
    prefix: "nlfair",
    replace: true,
    hosts: ["src", "dst"],
    links: [
      {
        a: "src",
        b: "dst",
        name: "bott",
        subnet: "10.211.1.0/24",
        delayMs: DELAY_MS,
        rateMbit: RATE_MBIT,
        queuePackets: QUEUE_PACKETS,
        seed: 7,
      },
    ],
  });
  const avail = async () =>
    (await tb.exec("src", ["sysctl", "-n", "net.ipv4.tcp_available_congestion_control"])).stdout;
  if (!(await avail()).includes("bbr")) await tb.exec("src", ["modprobe", "tcp_bbr"]);
  let ccs: ("cubic" | "bbr")[] = (await avail()).includes("bbr") ? ["cubic", "bbr"] : ["cubic"];
  if (ccs.length === 1) console.error("fairness: tcp_bbr is not available; BBR cases are left out");
  if (onlyCc !== undefined) ccs = ccs.filter((c) => c === onlyCc);

  const plan: {
    kind: FairnessCase["kind"];
    linkMode: FairnessCase["linkMode"];
    tcpFlows: number;
    tcpCc: FairnessCase["tcpCc"];
    overlayFlows: number;
  }[] = [
    { kind: "baseline", linkMode: "n-flow", tcpFlows: 1, tcpCc: "cubic", overlayFlows: 0 },
    { kind: "baseline", linkMode: "n-flow", tcpFlows: 0, tcpCc: "none", overlayFlows: 1 },
  ];
  const linkMode = "n-flow" as const;
  for (const cc of ccs)
    for (const n of [1, 2, 4])
      plan.push({ kind: "shared", linkMode, tcpFlows: n, tcpCc: cc, overlayFlows: 1 });
  for (const cc of ccs) {
    plan.push({ kind: "shared", linkMode, tcpFlows: 2, tcpCc: cc, overlayFlows: 2 });
    if (single) plan.push({ kind: "shared", linkMode: "1-flow", tcpFlows: 2, tcpCc: cc, overlayFlows: 2 });
  }
  if (ccs.includes("cubic"))
    plan.push({ kind: "shared", linkMode, tcpFlows: 2, tcpCc: "cubic", overlayFlows: 4 });
  if (single && ccs.includes("cubic"))
    plan.push({ kind: "shared", linkMode: "1-flow", tcpFlows: 2, tcpCc: "cubic", overlayFlows: 4 });
  if (reference) {
    for (const cc of ccs)
      for (const n of [1, 2, 4])
        plan.push({ kind: "reference", linkMode, tcpFlows: n, tcpCc: cc, overlayFlows: 0 });
  }

  const cases: FairnessCase[] = [];
  const overlay = await startOverlay(tb, {
    hosts: ["src", "dst"],
    links: [["src", "dst", "bott"]],
    tag: "f",
    ...(linkCc === undefined ? {} : { config: { link: linkCongestion } }),
  });
  // The same daemons with one-flow links, on another port, for the "1-flow" rows.
  const overlay1 = single
    ? await startOverlay(tb, {
        hosts: ["src", "dst"],
        links: [["src", "dst", "bott"]],
        tag: "f1",
        port: 8101,
        config: { link: { maxEmulatedFlows: 1, ...linkCongestion } },
      }).catch(async (e: unknown) => {
        await overlay.stop();
        await tb.destroy();
        throw e;
      })
    : undefined;
  const dstAddr = tb.hostAddress("dst", "bott");
  /** One iperf3 client (and its one-shot server) for warmSec + windowSec; Mbit/s per stream. */
  const iperf = async (
    port: number,
    flows: number,
    cc: string,
  ): Promise<{ mbit: number[]; note?: string }> => {
    const srv = tb.spawn("dst", ["iperf3", "-s", "-1", "-p", String(port)], { stdio: "ignore" });
    await sleep(300);
    const r = await tb.exec(
      "src",
      [
        "iperf3",
        "-c",
        dstAddr,
        "-p",
        String(port),
        "-P",
        String(flows),
        "-C",
        cc,
        "-t",
        String(warmSec + durationSec),
        "-i",
        "1",
        "-J",
      ],
      { timeoutMs: (warmSec + durationSec) * 1000 + 30_000 },
    );
    if (srv.exitCode === null) tb.kill(srv);
    try {
      const m = iperfMbit(r.stdout, flows, warmSec);
      return m.error !== undefined ? { mbit: m.mbit, note: `iperf3 ${cc}: ${m.error}` } : { mbit: m.mbit };
    } catch {
      return {
        mbit: Array.from({ length: flows }, () => 0),
        note: `iperf3 ${cc} failed (exit ${r.code}): ${r.stderr.slice(0, 200)}`,
      };
    }
  };
  try {
    let i = 0;
    for (const c of plan) {
      const label =
        c.kind === "reference"
          ? `reference: 1 reno + ${c.tcpFlows} ${c.tcpCc}`
          : `${c.overlayFlows} overlay (${c.linkMode} links) + ${c.tcpFlows} ${c.tcpCc}`;
      const ov = c.linkMode === "1-flow" && overlay1 !== undefined ? overlay1 : overlay;
      ctx.progress(i / plan.length, label);
      i++;
      const flows: OverlayFlow[] = [];
      let note: string | undefined;
      try {
        for (let k = 0; k < c.overlayFlows; k++)
          flows.push(await overlayFlow(ov.sock(1), ov.sock(2), 6500 + cases.length * 4 + k));
      } catch (e) {
        note = `overlay flow did not open: ${String(e).slice(0, 200)}`;
      }
      let tcpMbit: number[] = [];
      let overlayMbit: number[] = [];
      let renoMbit: number[] | undefined;
      const windowSec = durationSec;
      if (c.tcpFlows > 0) {
        const startBytes: number[] = [];
        const endBytes: number[] = [];
        const sampler = (async () => {
          await sleep(300 + warmSec * 1000 + 150);
          for (const f of flows) startBytes.push(f.bytes());
          await sleep(windowSec * 1000);
          for (const f of flows) endBytes.push(f.bytes());
        })();
        const [main, reno] = await Promise.all([
          iperf(IPERF_PORT, c.tcpFlows, c.tcpCc),
          c.kind === "reference" ? iperf(IPERF_PORT + 1, 1, "reno") : Promise.resolve(undefined),
        ]);
        await sampler;
        tcpMbit = main.mbit;
        note ??= main.note ?? reno?.note;
        renoMbit = reno?.mbit;
        overlayMbit = flows.map(
          (_, k) => (((endBytes[k] ?? 0) - (startBytes[k] ?? 0)) * 8) / windowSec / 1e6,
        );
      } else {
        await sleep(warmSec * 1000);
        const start = flows.map((f) => f.bytes());
        const t0 = performance.now();
        await sleep(windowSec * 1000);
        const secs = (performance.now() - t0) / 1000;
        overlayMbit = flows.map((f, k) => ((f.bytes() - (start[k] ?? 0)) * 8) / secs / 1e6);
      }
      for (const f of flows) {
        const e = f.error();
        if (e !== undefined) note ??= `overlay: ${e.slice(0, 200)}`;
        await f.stop();
      }
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const all = [...overlayMbit, ...(renoMbit ?? []), ...tcpMbit];
      const total = sum(all);
      const fair = total / all.length;
      const overlayShare =
        overlayMbit.length === 0 ? Number.NaN : sum(overlayMbit) / (overlayMbit.length * fair);
      const linkFlows = overlayMbit.length === 0 ? all : [sum(overlayMbit), ...tcpMbit];
      cases.push({
        ...c,
        durationSec: windowSec,
        overlayMbit,
        tcpMbit,
        ...(renoMbit !== undefined ? { renoMbit, renoShare: sum(renoMbit) / fair } : {}),
        totalMbit: total,
        overlayShare,
        jain: jain(all),
        overlayLinkShare:
          overlayMbit.length === 0 ? Number.NaN : sum(overlayMbit) / (total / (1 + tcpMbit.length)),
        jainLink: jain(linkFlows),
        jainOverlay: overlayMbit.length < 2 ? Number.NaN : jain(overlayMbit),
        loadAvg1: loadavg()[0] ?? Number.NaN,
        ...(note !== undefined ? { note } : {}),
      });
      await sleep(1000); // let the queue drain between cases
    }
  } finally {
    await overlay.stop();
    await overlay1?.stop();
    await tb.destroy();
  }

  const r2 = (x: number) => Math.round(x * 100) / 100;
  const tables: Table[] = [
    {
      title: `fairness: one ${RATE_MBIT} Mbit/s bottleneck, ${2 * DELAY_MS} ms RTT, ${QUEUE_PACKETS}-packet queue, ${durationSec} s per case (Mbit/s)`,
      columns: [
        "case",
        "links",
        "tcp cc",
        "overlay flows",
        "tcp flows",
        "overlay (reno) Mbit/s",
        "tcp Mbit/s",
        "total",
        "overlay (reno) share",
        "jain",
        "link share",
        "jain link",
        "jain overlay",
        "load",
      ],
      rows: cases.map((c) => [
        c.kind + (c.note !== undefined ? " (!)" : ""),
        c.kind === "reference" || c.overlayFlows === 0 ? "" : c.linkMode,
        c.tcpCc,
        c.overlayFlows,
        c.tcpFlows,
        c.renoMbit !== undefined ? `(${c.renoMbit.map(r2).join(" ")})` : c.overlayMbit.map(r2).join(" "),
        c.tcpMbit.map(r2).join(" "),
        c.totalMbit,
        c.renoShare ?? c.overlayShare,
        c.jain,
        c.overlayLinkShare,
        c.jainLink,
        c.jainOverlay,
        c.loadAvg1,
      ]),
      notes: [
        `overlay links' congestion control: ${linkCc ?? "the daemon's default (NewReno, N-flow)"}`,
        "overlay share: overlay throughput / (overlay flows × measured total / all flows); target 0.5–2",
        "jain: (Σx)² / (n·Σx²) over every flow of the case (each overlay session a flow); target ≥ 0.9",
        "reference rows: one kernel Reno flow (in parentheses) instead of the overlay, same competitors: the yardstick for a loss-based AIMD flow",
        "link share, jain link: the overlay link as one flow whatever the number of sessions it carries (one congestion controller); jain overlay: between the overlay sessions",
        "links: n-flow = default links, one emulated TCP flow per active overlay flow (MulTCP, docs/congestion.md); 1-flow = maxEmulatedFlows 1, one TCP flow per link (same daemons, second pair)",
        "load: 1-minute load average when the case ended (2 cores; above ~2 the overlay daemons are CPU-starved)",
        `niceness of the bench, the daemons and iperf3: ${nice} (bench/priority.ts; --nice N)`,
        ...cases
          .filter((c) => c.note !== undefined)
          .map((c) => `(!) ${c.tcpCc} ${c.overlayFlows}+${c.tcpFlows}: ${c.note}`),
      ],
    },
  ];
  const resultsDir = join(import.meta.dirname, "..", "..", "..", "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const svgFile = join(resultsDir, "fairness.svg");
  // The chart labels groups by TCP congestion control: mark the one-flow-link rows there.
  const chartRows = cases.map((c) =>
    c.linkMode === "1-flow" && c.overlayFlows > 0 ? { ...c, tcpCc: `${c.tcpCc} 1-flow` } : c,
  );
  writeFileSync(svgFile, fairnessChart(chartRows, { rateMbit: RATE_MBIT, rttMs: 2 * DELAY_MS }));
  console.log(`wrote ${svgFile}`);
  return {
    tables,
    data: {
      rateMbit: RATE_MBIT,
      rttMs: 2 * DELAY_MS,
      queuePackets: QUEUE_PACKETS,
      durationSec,
      nice,
      linkCc: linkCc ?? "default",
      cases,
    },
  };
});
