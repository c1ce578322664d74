/**
 * Runs spines-node daemons on a netlab line (one per host, neighbours on the emulated links) and
 * measures the overlay rows of the latency benchmark with {@link overlayProbe}.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SpinesClient } from "@spines-ts/spines-node/client";
import { ControlClient } from "../../../packages/daemon-kit/src/control-client.ts";
import { stateDir, summarize, type Testbed } from "../src/index.ts";
import { overlayProbe } from "./overlay-probe.ts";

export interface OverlayCase {
  system: "hop-by-hop" | "hop-by-hop-datagram" | "e2e-overlay";
  linkMode: "tcp-fair" | "rate-capped";
  rate: number;
  lossPct: number;
  durationSec: number;
  sent: number;
  latMs: number[];
  /** 1-minute load average of the machine when the case ended. */
  loadAvg1: number;
  note?: string;
}

/** Rate cap of the rate-capped mode: 2,500 bytes/ms = 20 Mbit/s per link, 2.5× the offered 8 Mbit/s. */
export const RATE_CAP_BYTES_PER_MS = 2500;
const PORT = 8100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function daemonMain(): string {
  return fileURLToPath(new URL("./main.ts", import.meta.resolve("@spines-ts/spines-node")));
}

async function startLine(
  tb: Testbed,
  hosts: string[],
  linkMode: "tcp-fair" | "rate-capped",
): Promise<{
  procs: ChildProcess[];
  sock: (i: number) => string;
  ctl: (i: number) => string;
  stderr: () => string;
}> {
  const dir = stateDir(tb.prefix);
  const cfg = join(dir, `spines-${linkMode}.json`);
  writeFileSync(
    cfg,
    JSON.stringify(
      linkMode === "rate-capped"
        ? { link: { congestion: { kind: "rate", rateBytesPerMs: RATE_CAP_BYTES_PER_MS } } }
        : {},
    ),
  );
  const sock = (i: number) => join(dir, `n${i + 1}.sock`);
  const procs: ChildProcess[] = [];
  let err = "";
  const main = daemonMain();
  hosts.forEach((h, i) => {
    const args = [
      process.execPath,
      "--import",
      import.meta.resolve("tsx"),
      main,
      "--id",
      String(i + 1),
      "--listen",
      `0.0.0.0:${PORT}`,
      "--control",
      join(dir, `n${i + 1}.ctl`),
      "--client-socket",
      sock(i),
      "--log-level",
      "error",
      "--config",
      cfg,
    ];
    if (i > 0)
      args.push(
        "--neighbor",
        `${i}@${tb.hostAddress(hosts[i - 1] as string, `${hosts[i - 1]}-${h}`)}:${PORT}`,
      );
    if (i < hosts.length - 1)
      args.push(
        "--neighbor",
        `${i + 2}@${tb.hostAddress(hosts[i + 1] as string, `${h}-${hosts[i + 1]}`)}:${PORT}`,
      );
    const p = tb.spawn(h, args, { stdio: ["ignore", "ignore", "pipe"] });
    p.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (err.length < 100_000) err += d;
    });
    procs.push(p);
  });
  // wait for every client socket and for a route from the first to the last node
  const t0 = performance.now();
  for (;;) {
    if (performance.now() - t0 > 60_000) throw new Error(`spines-node line did not come up:\n${err}`);
    if (procs.some((p) => p.exitCode !== null)) throw new Error(`a spines-node exited:\n${err}`);
    if (hosts.every((_, i) => existsSync(sock(i)))) {
      try {
        const c = await SpinesClient.connect({ path: sock(0) });
        try {
          const r = await c.route(hosts.length);
          if (r.path.length === hosts.length) break;
        } finally {
          c.close();
        }
      } catch {
        // not yet
      }
    }
    await sleep(200);
  }
  return { procs, sock, ctl: (i: number) => join(dir, `n${i + 1}.ctl`), stderr: () => err };
}

export async function runOverlayCases(
  tb: Testbed,
  hosts: string[],
  o: {
    phases: { rate: number; durationSec: number; linkMode: "tcp-fair" | "rate-capped" }[];
    losses: number[];
    setLoss: (lossPct: number) => Promise<void>;
    progress: (label: string) => void;
    onCaseDone: (sec: number) => void;
    /** Only these systems (default: all three). */
    systems?: readonly string[];
    /** Called after each case with what every daemon's link counters did during it (`--diag`). */
    diag?: (label: string, perNode: Record<string, unknown>[]) => void;
  },
): Promise<OverlayCase[]> {
  const out: OverlayCase[] = [];
  const systems = (
    [
      { system: "hop-by-hop", mode: "stream", link: "reliable" },
      { system: "hop-by-hop-datagram", mode: "datagram", link: "reliable" },
      { system: "e2e-overlay", mode: "stream", link: "best-effort" },
    ] as const
  ).filter((x) => o.systems === undefined || o.systems.includes(x.system));
  for (const ph of o.phases) {
    await o.setLoss(0);
    const line = await startLine(tb, hosts, ph.linkMode);
    try {
      // warm-up (JIT, link windows): one short stream at the phase's rate, not recorded
      await overlayProbe({
        txSocket: line.sock(0),
        rxSocket: line.sock(hosts.length - 1),
        dstNode: hosts.length,
        mode: "stream",
        link: "reliable",
        rate: ph.rate,
        durationMs: 2000,
        drainMs: 2000,
        port: 6300,
      }).catch((e: unknown) => {
        console.error(`latency: warm-up failed: ${String(e)}`);
      });
      for (const lossPct of o.losses) {
        await o.setLoss(lossPct);
        for (const s of systems) {
          o.progress(`${s.system} ${ph.linkMode} ${ph.rate}/s ${lossPct}%`);
          const before = o.diag === undefined ? [] : await linkCounters(line.ctl, hosts.length);
          let r: {
            sent: number;
            latMs: number[];
            blocked: number;
            seqs?: number[];
            sentAtMs?: number[];
            extra?: unknown;
            error?: string;
          };
          try {
            r = await overlayProbe({
              txSocket: line.sock(0),
              rxSocket: line.sock(hosts.length - 1),
              dstNode: hosts.length,
              mode: s.mode,
              link: s.link,
              rate: ph.rate,
              durationMs: ph.durationSec * 1000,
              drainMs: 5000,
              port: 6400 + out.length * 2,
              ...(o.diag !== undefined && s.mode === "stream"
                ? { beforeClose: () => sessionsOf(line.ctl(0), hosts.length) }
                : {}),
            });
          } catch (e) {
            // e.g. the session could not be opened in time on an overloaded machine: record, go on
            r = { sent: Math.round(ph.rate * ph.durationSec), latMs: [], blocked: 0, error: String(e) };
          }
          o.onCaseDone(ph.durationSec);
          if (o.diag !== undefined) {
            const after = await linkCounters(line.ctl, hosts.length);
            const extra: Record<string, unknown> = {};
            if (r.extra !== undefined) extra.senderSessions = r.extra;
            if (s.mode === "datagram" && r.seqs !== undefined && r.sentAtMs !== undefined)
              extra.orderedFromArrivals = orderedFromArrivals(r.latMs, r.seqs, r.sentAtMs);
            o.diag(`${s.system} ${ph.linkMode} ${ph.rate}/s ${lossPct}%`, [
              ...diffCounters(before, after),
              extra,
            ]);
          }
          const sum = summarize(r.latMs);
          out.push({
            system: s.system,
            linkMode: ph.linkMode,
            rate: ph.rate,
            lossPct,
            durationSec: ph.durationSec,
            sent: r.sent,
            latMs: r.latMs,
            loadAvg1: loadavg()[0] ?? Number.NaN,
            ...(r.error !== undefined
              ? { note: `failed: ${r.error.slice(0, 200)}` }
              : r.blocked > 0
                ? { note: `client send refused ${r.blocked} times` }
                : {}),
          });
          // a lost session leaves the next case with stragglers; a short pause lets them go
          if (sum.delivered < r.sent) await sleep(500);
        }
      }
    } finally {
      for (const p of line.procs) tb.kill(p, "SIGTERM");
      await sleep(300);
      for (const p of line.procs) if (p.exitCode === null) tb.kill(p);
    }
  }
  return out;
}

type Counters = Record<string, Record<string, number>>;

/** Every daemon's per-link counters (control `status`: the link's and its reliable sender's). */
async function linkCounters(ctl: (i: number) => string, n: number): Promise<Counters[]> {
  const out: Counters[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const c = await ControlClient.connect(ctl(i));
      try {
        const st = await c.call<{ counters: { links: Counters } }>("status");
        out.push(st.counters.links);
      } finally {
        c.close();
      }
    } catch {
      out.push({});
    }
  }
  return out;
}

/** Per node and neighbour, the counters that changed (after − before), numeric ones only. */
function diffCounters(before: Counters[], after: Counters[]): Record<string, unknown>[] {
  return after.map((links, i) => {
    const node: Record<string, Record<string, number>> = {};
    for (const [nb, k] of Object.entries(links)) {
      const b = before[i]?.[nb] ?? {};
      const d: Record<string, number> = {};
      for (const [key, v] of Object.entries(k)) {
        if (typeof v !== "number") continue;
        const x = v - (typeof b[key] === "number" ? (b[key] as number) : 0);
        if (x !== 0) d[key] = x;
      }
      node[nb] = d;
    }
    return node;
  });
}

/** The sending daemon's sessions to `dst` (control `sessions`: retransmissions, blocked counts). */
async function sessionsOf(ctl: string, dst: number): Promise<unknown> {
  const c = await ControlClient.connect(ctl);
  try {
    const ss = await c.call<{ remoteNode: number }[]>("sessions");
    return ss.filter((x) => x.remoteNode === dst);
  } finally {
    c.close();
  }
}

/**
 * Datagram latencies as an ordered stream would deliver them (message k waits for every earlier
 * one): what a stream over the same links would show if it added nothing to them.
 */
function orderedFromArrivals(
  latMs: number[],
  seqs: number[],
  sentAtMs: number[],
): { meanMs: number; p50Ms: number; p99Ms: number } {
  const idx = seqs.map((_, i) => i).sort((a, b) => (seqs[a] as number) - (seqs[b] as number));
  const out: number[] = [];
  let horizon = Number.NEGATIVE_INFINITY;
  for (const i of idx) {
    const at = (sentAtMs[i] as number) + (latMs[i] as number);
    horizon = Math.max(horizon, at);
    out.push(horizon - (sentAtMs[i] as number));
  }
  const sm = summarize(out);
  return { meanMs: sm.meanMs, p50Ms: sm.p50Ms, p99Ms: sm.p99Ms };
}
