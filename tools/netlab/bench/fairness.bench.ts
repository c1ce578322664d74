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
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { runBench, type Table } from "@spines-ts/bench";
import { SpinesClient } from "@spines-ts/spines-node/client";
import { Testbed } from "../src/index.ts";
import { fairnessChart } from "./charts.ts";
import { startOverlay } from "./overlay-graph.ts";

export interface FairnessCase {
  /** "baseline" rows measure the link with one kind of flow alone. */
  kind: "baseline" | "shared";
  tcpFlows: number;
  tcpCc: "cubic" | "bbr" | "none";
  overlayFlows: number;
  durationSec: number;
  /** Throughput of each flow over the measured window, Mbit/s. */
  overlayMbit: number[];
  tcpMbit: number[];
  totalMbit: number;
  /** Total overlay throughput over (overlay flows × total / all flows); NaN without overlay flows. */
  overlayShare: number;
  /** Jain's fairness index over every flow of the case. */
  jain: number;
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

await runBench("fairness", async (ctx) => {
  const quick = ctx.quick;
  const durationSec = quick ? 5 : 20;
  const warmSec = quick ? 1 : 2;

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
  const ccs: ("cubic" | "bbr")[] = (await avail()).includes("bbr") ? ["cubic", "bbr"] : ["cubic"];
  if (ccs.length === 1) console.error("fairness: tcp_bbr is not available; BBR cases are left out");

  const plan: {
    kind: FairnessCase["kind"];
    tcpFlows: number;
    tcpCc: FairnessCase["tcpCc"];
    overlayFlows: number;
  }[] = [
    { kind: "baseline", tcpFlows: 1, tcpCc: "cubic", overlayFlows: 0 },
    { kind: "baseline", tcpFlows: 0, tcpCc: "none", overlayFlows: 1 },
  ];
  for (const cc of ccs)
    for (const n of [1, 2, 4]) plan.push({ kind: "shared", tcpFlows: n, tcpCc: cc, overlayFlows: 1 });
  for (const cc of ccs) plan.push({ kind: "shared", tcpFlows: 2, tcpCc: cc, overlayFlows: 2 });

  const cases: FairnessCase[] = [];
  const overlay = await startOverlay(tb, {
    hosts: ["src", "dst"],
    links: [["src", "dst", "bott"]],
    tag: "f",
  });
  const dstAddr = tb.hostAddress("dst", "bott");
  try {
    let i = 0;
    for (const c of plan) {
      ctx.progress(i / plan.length, `${c.overlayFlows} overlay + ${c.tcpFlows} ${c.tcpCc}`);
      i++;
      const flows: OverlayFlow[] = [];
      let note: string | undefined;
      try {
        for (let k = 0; k < c.overlayFlows; k++)
          flows.push(await overlayFlow(overlay.sock(1), overlay.sock(2), 6500 + cases.length * 4 + k));
      } catch (e) {
        note = `overlay flow did not open: ${String(e).slice(0, 200)}`;
      }
      let tcpMbit: number[] = [];
      let overlayMbit: number[] = [];
      const windowSec = durationSec;
      if (c.tcpFlows > 0) {
        const srv = tb.spawn("dst", ["iperf3", "-s", "-1", "-p", String(IPERF_PORT)], { stdio: "ignore" });
        await sleep(300);
        const startBytes: number[] = [];
        const endBytes: number[] = [];
        const sampler = (async () => {
          await sleep(warmSec * 1000 + 150);
          for (const f of flows) startBytes.push(f.bytes());
          await sleep(windowSec * 1000);
          for (const f of flows) endBytes.push(f.bytes());
        })();
        const r = await tb.exec(
          "src",
          [
            "iperf3",
            "-c",
            dstAddr,
            "-p",
            String(IPERF_PORT),
            "-P",
            String(c.tcpFlows),
            "-C",
            c.tcpCc,
            "-t",
            String(warmSec + windowSec),
            "-i",
            "1",
            "-J",
          ],
          { timeoutMs: (warmSec + windowSec) * 1000 + 30_000 },
        );
        await sampler;
        if (srv.exitCode === null) tb.kill(srv);
        try {
          const j = JSON.parse(r.stdout) as { intervals?: IperfInterval[]; error?: string };
          if (j.error !== undefined) note = `iperf3: ${j.error}`;
          const ivs = (j.intervals ?? []).filter((iv) => (iv.streams[0]?.start ?? 0) >= warmSec - 0.01);
          tcpMbit = Array.from({ length: c.tcpFlows }, (_, s) => {
            const bytes = ivs.reduce((a, iv) => a + (iv.streams[s]?.bytes ?? 0), 0);
            const secs = ivs.reduce(
              (a, iv) => a + ((iv.streams[s]?.end ?? 0) - (iv.streams[s]?.start ?? 0)),
              0,
            );
            return secs > 0 ? (bytes * 8) / secs / 1e6 : 0;
          });
        } catch {
          note = `iperf3 failed (exit ${r.code}): ${r.stderr.slice(0, 200)}`;
        }
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
      const all = [...overlayMbit, ...tcpMbit];
      const total = all.reduce((a, b) => a + b, 0);
      const fair = total / all.length;
      const overlayShare =
        overlayMbit.length === 0
          ? Number.NaN
          : overlayMbit.reduce((a, b) => a + b, 0) / (overlayMbit.length * fair);
      cases.push({
        ...c,
        durationSec: windowSec,
        overlayMbit,
        tcpMbit,
        totalMbit: total,
        overlayShare,
        jain: jain(all),
        loadAvg1: loadavg()[0] ?? Number.NaN,
        ...(note !== undefined ? { note } : {}),
      });
      await sleep(1000); // let the queue drain between cases
    }
  } finally {
    await overlay.stop();
    await tb.destroy();
  }

  const r2 = (x: number) => Math.round(x * 100) / 100;
  const tables: Table[] = [
    {
      title: `fairness: one ${RATE_MBIT} Mbit/s bottleneck, ${2 * DELAY_MS} ms RTT, ${QUEUE_PACKETS}-packet queue, ${durationSec} s per case (Mbit/s)`,
      columns: [
        "case",
        "tcp cc",
        "overlay flows",
        "tcp flows",
        "overlay Mbit/s",
        "tcp Mbit/s",
        "total",
        "overlay share",
        "jain",
        "load",
      ],
      rows: cases.map((c) => [
        c.kind + (c.note !== undefined ? " (!)" : ""),
        c.tcpCc,
        c.overlayFlows,
        c.tcpFlows,
        c.overlayMbit.map(r2).join(" "),
        c.tcpMbit.map(r2).join(" "),
        c.totalMbit,
        c.overlayShare,
        c.jain,
        c.loadAvg1,
      ]),
      notes: [
        "overlay share: overlay throughput / (overlay flows × measured total / all flows); target 0.5–2",
        "jain: (Σx)² / (n·Σx²) over every flow of the case; target ≥ 0.9",
        "load: 1-minute load average when the case ended (2 cores; above ~2 the overlay daemons are CPU-starved)",
        ...cases
          .filter((c) => c.note !== undefined)
          .map((c) => `(!) ${c.tcpCc} ${c.overlayFlows}+${c.tcpFlows}: ${c.note}`),
      ],
    },
  ];
  const resultsDir = join(import.meta.dirname, "..", "..", "..", "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const svgFile = join(resultsDir, "fairness.svg");
  writeFileSync(svgFile, fairnessChart(cases, { rateMbit: RATE_MBIT, rttMs: 2 * DELAY_MS }));
  console.log(`wrote ${svgFile}`);
  return {
    tables,
    data: { rateMbit: RATE_MBIT, rttMs: 2 * DELAY_MS, queuePackets: QUEUE_PACKETS, durationSec, cases },
  };
});
