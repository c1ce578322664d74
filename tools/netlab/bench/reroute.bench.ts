/**
 * `pnpm bench reroute [--quick]` (issue 13, benchmark 3; needs root).
 *
 * Four hosts in a diamond (a–b–d and a–c–d), every link emulated by netlab at 10 ms one way, one
 * spines-node daemon per host with default timers (a = node 1, b = 2, c = 3, d = 4). A steady
 * reliable session stream from a to d: 200 messages/s of 1,000 bytes, each carrying a u32 sequence
 * number and a u64 send time. After a warm-up, node 1's route to node 4 names the middle node of
 * the active path and one fault hits that path:
 *   - `kill`: SIGKILL of the middle daemon;
 *   - `oneway`: the emulator drops the a → middle direction only (data can no longer go out; the
 *     middle node's hellos still reach a);
 *   - `none`: no fault (the same-run baseline: gaps the loaded machine causes on its own).
 * Reported: the outage (longest gap between deliveries from the fault to the end, or until the end
 * when delivery never resumed), messages lost (sent, never delivered) and duplicated.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { runBench, type Table } from "@spines-ts/bench";
import { SpinesClient } from "@spines-ts/spines-node/client";
import { Testbed } from "../src/index.ts";
import { rerouteChart } from "./charts.ts";
import { startOverlay } from "./overlay-graph.ts";

export interface RerouteCase {
  fault: "none" | "kill" | "oneway";
  mode: "stream";
  rate: number;
  /** Path from node 1 to node 4 before the fault and a while after it. */
  pathBefore: number[];
  pathAfter: number[];
  /** Middle node of the active path when the fault hit (killed, or cut off from a one way); 0 for none. */
  faultNode: number;
  sent: number;
  delivered: number;
  /** Longest gap between deliveries from the fault on (ms); at the end of sending if delivery never resumed. */
  outageMs: number;
  /** Longest gap between deliveries before the fault (ms): the machine's own noise. */
  gapBeforeMs: number;
  lost: number;
  duplicated: number;
  /** Messages that arrived after a later one. */
  reordered: number;
  /** Delivery resumed after the fault. */
  recovered: boolean;
  loadAvg1: number;
  note?: string;
}

const HOSTS = ["a", "b", "c", "d"];
const LINKS: [string, string, string][] = [
  ["a", "b", "a-b"],
  ["b", "d", "b-d"],
  ["a", "c", "a-c"],
  ["c", "d", "c-d"],
];
const DELAY_MS = 10;
const RATE = 200;
const SIZE = 1000;
const TARGET_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await runBench("reroute", async (ctx) => {
  const quick = ctx.quick;
  const preSec = quick ? 3 : 5;
  const postSec = quick ? 8 : 20;
  const faults: RerouteCase["fault"][] = ["none", "kill", "oneway"];

  const tb = await Testbed.create({
    prefix: "nlrr",
    replace: true,
    hosts: HOSTS,
    links: LINKS.map(([a, b, name], i) => ({
      a,
      b,
      name,
      subnet: `10.212.${i + 1}.0/24`,
      delayMs: DELAY_MS,
      seed: 30 + i,
    })),
  });
  const cases: RerouteCase[] = [];
  try {
    for (const [ci, fault] of faults.entries()) {
      ctx.progress(ci / faults.length, fault);
      const ov = await startOverlay(tb, { hosts: HOSTS, links: LINKS, tag: `r${ci}` });
      let note: string | undefined;
      const rx = await SpinesClient.connect({ path: ov.sock(4) });
      const tx = await SpinesClient.connect({ path: ov.sock(1) });
      rx.on("error", () => {});
      tx.on("error", (e: unknown) => {
        note ??= `client: ${String(e).slice(0, 160)}`;
      });
      const total = RATE * (preSec + postSec);
      const count = new Uint16Array(total);
      const arrivals: number[] = [];
      let duplicated = 0;
      let reordered = 0;
      let highest = -1;
      const port = 6600 + ci * 2;
      try {
        const l = await rx.listen(port);
        const [s, peer] = await Promise.all([tx.connect(4, port), l.accept()]);
        s.on("error", (e: unknown) => {
          note ??= `stream: ${String(e).slice(0, 160)}`;
        });
        peer.on("error", (e: unknown) => {
          note ??= `stream (receiver): ${String(e).slice(0, 160)}`;
        });
        let buf: Buffer = Buffer.alloc(0);
        peer.on("data", (d: Buffer) => {
          buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
          let off = 0;
          const now = performance.now();
          while (buf.length - off >= SIZE) {
            const seq = buf.readUInt32BE(off);
            off += SIZE;
            if (seq >= total) continue;
            if ((count[seq] ?? 0) > 0) duplicated++;
            count[seq] = (count[seq] ?? 0) + 1;
            if (seq < highest) reordered++;
            highest = Math.max(highest, seq);
            arrivals.push(now);
          }
          buf = buf.subarray(off);
        });
        const before = await tx.route(4);
        let faultAt = Number.NaN;
        let sent = 0;
        const t0 = performance.now();
        let faulted = false;
        let mid = 0;
        while (sent < total) {
          const now = performance.now();
          const due = Math.min(total, Math.floor(((now - t0) * RATE) / 1000) + 1);
          while (sent < due) {
            const b = Buffer.alloc(SIZE);
            b.writeUInt32BE(sent, 0);
            b.writeBigUInt64BE(process.hrtime.bigint(), 4);
            s.write(b);
            sent++;
          }
          if (!faulted && now - t0 >= preSec * 1000) {
            faulted = true;
            faultAt = performance.now();
            mid = (await tx.route(4)).path[1] ?? 2;
            if (fault === "kill") tb.kill(ov.procs[mid - 1] as (typeof ov.procs)[number], "SIGKILL");
            else if (fault === "oneway") await tb.setLink(mid === 2 ? "a-b" : "a-c", { up: false }, "ab");
          }
          await sleep(1);
        }
        const sendEnd = performance.now();
        const drainEnd = sendEnd + 5000;
        while (arrivals.length - duplicated < total && performance.now() < drainEnd) await sleep(20);
        const after = await tx.route(4).catch(() => ({ path: [] as number[] }));
        if (fault === "kill") {
          const victim = ov.procs[mid - 1];
          if (victim !== undefined && victim.exitCode === null && victim.signalCode === null)
            note ??= "the killed daemon was still running at the end";
        }
        if (fault === "oneway") await tb.setLink(mid === 2 ? "a-b" : "a-c", { up: true }, "ab");
        const pre = arrivals.filter((t) => t < faultAt);
        const post = arrivals.filter((t) => t >= faultAt);
        const maxGap = (ts: number[]) => {
          let g = 0;
          for (let i = 1; i < ts.length; i++) g = Math.max(g, (ts[i] as number) - (ts[i - 1] as number));
          return g;
        };
        const lastPre = pre[pre.length - 1] ?? faultAt;
        const recovered = post.length > 0;
        const outageMs = recovered ? maxGap([lastPre, ...post]) : sendEnd - lastPre;
        let delivered = 0;
        for (const c of count) if (c > 0) delivered++;
        cases.push({
          fault,
          mode: "stream",
          rate: RATE,
          pathBefore: before.path,
          pathAfter: after.path,
          faultNode: fault === "none" ? 0 : mid,
          sent,
          delivered,
          outageMs,
          gapBeforeMs: maxGap(pre),
          lost: sent - delivered,
          duplicated,
          reordered,
          recovered,
          loadAvg1: loadavg()[0] ?? Number.NaN,
          ...(note !== undefined ? { note } : {}),
        });
        s.destroy();
        peer.destroy();
        await l.close().catch(() => {});
      } catch (e) {
        cases.push({
          fault,
          mode: "stream",
          rate: RATE,
          pathBefore: [],
          pathAfter: [],
          faultNode: 0,
          sent: 0,
          delivered: 0,
          outageMs: Number.NaN,
          gapBeforeMs: Number.NaN,
          lost: 0,
          duplicated: 0,
          reordered: 0,
          recovered: false,
          loadAvg1: loadavg()[0] ?? Number.NaN,
          note: `failed: ${String(e).slice(0, 200)}`,
        });
      } finally {
        rx.close();
        tx.close();
        await ov.stop();
      }
    }
  } finally {
    await tb.destroy();
  }

  const tables: Table[] = [
    {
      title: `reroute: diamond a–{b,c}–d, ${DELAY_MS} ms links, ${RATE} × ${SIZE}-byte messages/s on one stream, fault after ${preSec} s, ${postSec} s more (ms)`,
      columns: [
        "fault",
        "path before",
        "path after",
        "fault node",
        "sent",
        "delivered",
        "outage ms",
        "gap before ms",
        "lost",
        "dup",
        "reordered",
        "load",
      ],
      rows: cases.map((c) => [
        c.fault +
          (c.note !== undefined ? " (!)" : "") +
          (c.recovered || c.fault === "none" ? "" : " (no recovery)"),
        c.pathBefore.join("-"),
        c.pathAfter.join("-"),
        c.faultNode || "",
        c.sent,
        c.delivered,
        c.outageMs,
        c.gapBeforeMs,
        c.lost,
        c.duplicated,
        c.reordered,
        c.loadAvg1,
      ]),
      notes: [
        `target: outage ≤ ${TARGET_MS} ms with default timers, 0 lost, 0 duplicated`,
        "outage: longest gap between deliveries from the fault on; 'none' is the same-run baseline (no fault)",
        "gap before: longest gap before the fault (the loaded machine's own noise)",
        "path before / after: node 1's route to node 4 at the start and at the end; fault node: the middle node of the route when the fault hit (equal-cost paths can swap before it)",
        "load: 1-minute load average when the case ended (2 cores)",
        ...cases.filter((c) => c.note !== undefined).map((c) => `(!) ${c.fault}: ${c.note}`),
      ],
    },
  ];
  const resultsDir = join(import.meta.dirname, "..", "..", "..", "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const svgFile = join(resultsDir, "reroute.svg");
  writeFileSync(svgFile, rerouteChart(cases, TARGET_MS));
  console.log(`wrote ${svgFile}`);
  return {
    tables,
    data: { delayMs: DELAY_MS, rate: RATE, messageBytes: SIZE, preSec, postSec, targetMs: TARGET_MS, cases },
  };
});
