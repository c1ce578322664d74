/**
 * `pnpm bench membership [--quick]`
 *
 * 1. Crash -> new view, in the simulator (LAN mesh, 0.1 ms +- 0.05 ms one way), 3/8/16/32 members,
 *    default and fast profiles: time from the crash until the first survivor and until every
 *    survivor has installed a view without the crashed member. Baseline: the configured failure
 *    timeout (no heartbeat protocol can detect a silent crash faster), reported as a ratio.
 * 2. The same on loopback UDP with real processes (SIGKILL), 3 and 8 members.
 * 3. Ordered-message throughput in a stable view on loopback (one sender, 100-byte messages, until
 *    all are delivered back to the sender), against a raw loopback UDP echo with the same window in
 *    the same run.
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { performance } from "node:perf_hooks";
import { runBench, stats, type Table } from "@spines-ts/bench";
import { Simulator } from "@spines-ts/netsim";
import { type MembershipNode, membershipFactory, type ProfileName, profiles } from "../src/index.ts";
import { type Proc, startGroup, startMember } from "../test/procs.ts";

interface CrashResult {
  first: number;
  all: number;
}

function simCrash(n: number, profile: ProfileName, seed: number): CrashResult {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  let crashedAt = Number.NaN;
  let victim = -1;
  const installs = new Map<number, number>();
  sim.mesh(ids, { delayMs: 0.1, jitterMs: 0.05 });
  for (const id of ids)
    sim.addNode(
      id,
      membershipFactory({ group: "bench", peers: ids, profile }, (ev, node) => {
        if (
          ev.type === "view" &&
          victim >= 0 &&
          !ev.view.members.includes(victim) &&
          !installs.has(node.host.id)
        )
          installs.set(node.host.id, sim.now - crashedAt);
      }),
    );
  const full = () => ids.every((id) => sim.program<MembershipNode>(id)?.core.view?.members.length === n);
  if (!sim.runUntil(full, 3000)) throw new Error(`sim: ${n} members did not form a view`);
  // crash at a random phase of the heartbeat cycle
  sim.runFor(200 + ((seed * 37) % 100));
  victim = ids[seed % n] as number;
  crashedAt = sim.now;
  sim.crash(victim);
  const done = () => installs.size === n - 1;
  if (!sim.runUntil(done, sim.now + 5000))
    throw new Error(`sim: no view without ${victim} (n=${n}, ${profile})`);
  const v = [...installs.values()];
  return { first: Math.min(...v), all: Math.max(...v) };
}

function wall(): number {
  return performance.timeOrigin + performance.now();
}

async function loopbackCrash(n: number, profile: ProfileName, trials: number): Promise<CrashResult[]> {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const extra = ["--profile", profile, "--group", `bench-${profile}-${n}`];
  const { procs, ports } = await startGroup(ids, extra);
  const out: CrashResult[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      const vi = 1 + (t % (n - 1)); // never member 1 here, so the trial loop keeps one stable coordinator... and
      const victimIdx = t % 2 === 0 ? vi : 0; // ...every other trial crashes the coordinator (member 1)
      const victim = procs[victimIdx] as Proc;
      const others = procs.filter((p) => p !== victim);
      const marks = others.map((p) => p.lines.length);
      await new Promise((r) => setTimeout(r, 150 + ((t * 53) % 100))); // random heartbeat phase
      const killedAt = wall();
      victim.kill("SIGKILL");
      const rest = ids.filter((id) => id !== victim.id);
      const views = await Promise.all(others.map((p, i) => p.waitView(rest, 20_000, marks[i])));
      const times = views.map((l) => (l.t as number) - killedAt);
      out.push({ first: Math.min(...times), all: Math.max(...times) });
      // bring it back and wait for the full view again
      const fresh = startMember(victim.id, ids, ports, victimIdx, extra);
      procs[victimIdx] = fresh;
      const marks2 = procs.map((p) => (p === fresh ? 0 : p.lines.length));
      await Promise.all(procs.map((p, i) => p.waitView(ids, 60_000, marks2[i])));
    }
  } finally {
    for (const p of procs) if (!p.exited) p.kill("SIGKILL");
  }
  return out;
}

async function loopbackThroughput(n: number, count: number): Promise<{ msgsPerSec: number; ms: number }> {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const { procs } = await startGroup(ids, ["--group", `tput-${n}`]);
  try {
    const sender = procs[n - 1] as Proc; // not the sequencer: the full path (data -> order -> deliver)
    const mark = sender.lines.length;
    sender.send(`burst ${count} 100`);
    const l = await sender.waitFor((x) => x.ev === "burst", 120_000, mark);
    const ms = l.ms as number;
    return { msgsPerSec: (count * 1000) / ms, ms };
  } finally {
    for (const p of procs) if (!p.exited) p.kill("SIGKILL");
  }
}

/** Raw loopback UDP: 100-byte datagrams echoed by another process, `window` outstanding. */
async function rawUdpEcho(count: number, window: number): Promise<{ msgsPerSec: number; rttUs: number }> {
  const echoSrc =
    "const s=require('node:dgram').createSocket('udp4');" +
    "s.on('message',(m,r)=>s.send(m,r.port,r.address));" +
    "s.bind(0,'127.0.0.1',()=>console.log(s.address().port));";
  const echo = spawn(process.execPath, ["-e", echoSrc], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const bp = await new Promise<number>((resolve) => {
      echo.stdout?.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    });
    const a = createSocket("udp4");
    await new Promise<void>((r) => a.bind(0, "127.0.0.1", () => r()));
    const payload = Buffer.alloc(100);
    // round trip, one at a time
    let rtts = 0;
    const rttN = 2000;
    await new Promise<void>((resolve) => {
      let i = 0;
      let t0 = performance.now();
      const onMsg = () => {
        rtts += performance.now() - t0;
        if (++i >= rttN) {
          a.off("message", onMsg);
          resolve();
          return;
        }
        t0 = performance.now();
        a.send(payload, bp, "127.0.0.1");
      };
      a.on("message", onMsg);
      a.send(payload, bp, "127.0.0.1");
    });
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      let sent = 0;
      let got = 0;
      a.on("message", () => {
        got++;
        if (got >= count) resolve();
        else if (sent < count) {
          sent++;
          a.send(payload, bp, "127.0.0.1");
        }
      });
      for (; sent < window; sent++) a.send(payload, bp, "127.0.0.1");
    });
    const ms = performance.now() - t0;
    a.close();
    return { msgsPerSec: (count * 1000) / ms, rttUs: (rtts / rttN) * 1000 };
  } finally {
    echo.kill("SIGKILL");
  }
}

await runBench("membership", async (ctx) => {
  const simTrials = ctx.quick ? 5 : 20;
  const loopTrials = ctx.quick ? 2 : 6;
  const sizes = [3, 8, 16, 32];
  const tables: Table[] = [];
  const data: Record<string, unknown> = {};

  // 1. simulator
  const simRows: (string | number)[][] = [];
  const simData: Record<string, unknown>[] = [];
  let step = 0;
  for (const profile of ["default", "fast"] as const) {
    for (const n of sizes) {
      ctx.progress(step++ / 16, `sim ${profile} n=${n}`);
      const rs = Array.from({ length: simTrials }, (_, i) => simCrash(n, profile, 1000 + i));
      const first = stats(rs.map((r) => r.first));
      const all = stats(rs.map((r) => r.all));
      const floor = profiles[profile].failureTimeoutMs;
      const target = profile === "fast" ? 150 : 500;
      simRows.push([
        profile,
        n,
        first.p50,
        all.p50,
        all.max,
        floor,
        all.p50 / floor,
        all.max <= target ? "yes" : "NO",
      ]);
      simData.push({
        profile,
        n,
        trials: simTrials,
        firstMs: first,
        allMs: all,
        baselineTimeoutMs: floor,
        targetMs: target,
      });
    }
  }
  tables.push({
    title: "Crash -> new view, simulator (LAN mesh 0.1 ms one way), ms of virtual time",
    columns: [
      "profile",
      "members",
      "first p50",
      "all p50",
      "all max",
      "timeout (floor)",
      "all p50 / floor",
      "max <= target",
    ],
    rows: simRows,
    notes: [
      `${simTrials} crashes per row (a random member, the coordinator included, at a random heartbeat phase).`,
      "Baseline: the configured failure timeout. A silent crash is seen at (last heartbeat heard) + timeout, i.e. between",
      "timeout - heartbeat interval and timeout after the crash; the view change adds the rest. Targets: default 500 ms, fast 150 ms.",
    ],
  });
  data.simulator = simData;

  // 2. loopback processes
  const loopRows: (string | number)[][] = [];
  const loopData: Record<string, unknown>[] = [];
  for (const profile of ["default", "fast"] as const) {
    for (const n of ctx.quick ? [3, 8] : [3, 8, 16, 32]) {
      ctx.progress(step++ / 20, `loopback ${profile} n=${n}`);
      const trials = n <= 8 ? loopTrials : 3;
      const floor = profiles[profile].failureTimeoutMs;
      try {
        const rs = await loopbackCrash(n, profile, trials);
        const first = stats(rs.map((r) => r.first));
        const all = stats(rs.map((r) => r.all));
        loopRows.push([profile, n, trials, first.p50, all.p50, all.max, floor, all.p50 / floor]);
        loopData.push({ profile, n, trials, firstMs: first, allMs: all, baselineTimeoutMs: floor });
      } catch (e) {
        // too many processes for this machine: say so instead of a number
        const why = (e as Error).message.split("\n")[0] ?? "failed";
        loopRows.push([profile, n, trials, "failed", "", "", floor, ""]);
        loopData.push({ profile, n, trials, failed: why });
      }
    }
  }
  tables.push({
    title: "Crash (SIGKILL) -> new view, loopback UDP, one process per member, ms of wall time",
    columns: [
      "profile",
      "members",
      "trials",
      "first p50",
      "all p50",
      "all max",
      "timeout (floor)",
      "all p50 / floor",
    ],
    rows: loopRows,
    notes: [
      "Every other crash kills the coordinator. Times from the kill to each survivor's view event (wall clock).",
      "16 and 32 members are 16 and 32 Node processes on 2 cores: their heartbeats and event loops compete for CPU, so these rows measure the machine as much as the protocol.",
    ],
  });
  data.loopback = loopData;

  // 3. throughput
  const count = ctx.quick ? 5000 : 20000;
  ctx.progress(0.95, "throughput");
  const raw = await rawUdpEcho(count, 64);
  const tput: (string | number)[][] = [];
  const tputData: Record<string, unknown>[] = [];
  for (const n of [3, 8]) {
    const r = await loopbackThroughput(n, count);
    tput.push([`membership, ${n} members`, r.msgsPerSec, r.msgsPerSec / raw.msgsPerSec]);
    tputData.push({ members: n, count, ...r });
  }
  tput.push(["raw UDP echo to another process, window 64 (baseline)", raw.msgsPerSec, 1]);
  tables.push({
    title: "Ordered multicast throughput in a stable view, loopback, 100-byte messages",
    columns: ["system", "msgs/s", "ratio to raw UDP echo"],
    rows: tput,
    notes: [
      `${count} messages from one non-sequencer member, timed until all are delivered back to it (each is delivered to every member).`,
      `Baseline in the same run: 100-byte datagrams echoed by a second process with 64 outstanding (no ordering, no fan-out); its one-at-a-time round trip is ${raw.rttUs.toFixed(1)} us.`,
    ],
  });
  data.throughput = { membership: tputData, rawUdpEcho: raw };
  return { tables, data };
});
