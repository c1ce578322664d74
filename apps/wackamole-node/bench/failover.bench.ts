/**
 * `pnpm bench failover [--quick] [--sizes 2,4,8] [--trials N] [--systems ...] [--failures ...]`
 * (issue 15): fail-over time of wackamole-node against keepalived, in network namespaces (root).
 *
 * Testbed (tools/netlab): N server namespaces and a client on one bridge. Every server runs a
 * responder bound to every VIP (UDP echo + node id); the client's prober sends a UDP request to every
 * VIP every 5 ms and notes the first reply from a new holder. One VIP per group, max(4, N) groups.
 *
 * Systems, measured in the same run on the same testbed:
 * - `wackamole-node`, profile `default` and `fast` (its membership timing profiles);
 * - `keepalived` (Debian package), the standard way: one VRRP instance per group, priorities that
 *   give each group its own master, `advert_int 1` (VRRPv2; reported as profile `default`) and
 *   `advert_int 0.1` (VRRPv3; profile `fast`).
 *
 * Failures (the node holding the first group at that moment):
 * - `kill`: SIGKILL of the daemon (keepalived: its VRRP child and parent);
 * - `crash`: the node's bridge port goes down (netlab linkDown): the node is cut off at once;
 * - `stop`: SIGTERM (graceful stop).
 *
 * Per trial, for every VIP the victim held: the time from the fault (taken just before the fault is
 * injected) to the first client reply through that VIP from another node. Violations, from `ip
 * monitor address` in every server namespace over [fault, fail-over done + 1 s]: a VIP held by two
 * nodes of one component at any moment, or by no node after its fail-over completed (first reply
 * from the new holder). Addresses a killed daemon leaves on its interface (neither system can
 * remove them) are reported as `staleHolds`, not as violations. Two wackamole-node holders that were
 * in different components at that moment (one missing from the other's installed view: a
 * membership flap split the cluster, and one holder per component is the contract) are reported as
 * `splitHolds` ("split"), not as violations; flaps themselves are visible in the daemons' logs.
 * After each trial the victim comes back (restart, link up) and the next trial waits until every
 * VIP is held once and answers.
 *
 * Writes bench/results/failover.json and prints a table, keepalived beside wackamole-node, with
 * the load average (the machine is shared; figures under load are not quiet-machine figures).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { canRun } from "@spines-ts/netlab";
import {
  countViolations,
  FailoverLab,
  KeepalivedCluster,
  LOG_DIR,
  makeGroups,
  now,
  portDownAt,
  REPO,
  sleep,
  WackCluster,
  waitFor,
} from "./cluster.ts";

type Failure = "kill" | "crash" | "stop";
interface System {
  system: "wackamole-node" | "keepalived";
  profile: "default" | "fast";
  detail: string;
  startAll(): void;
  start(n: number): Promise<void> | void;
  stop(n: number, signal: NodeJS.Signals): Promise<number | null>;
  running(n: number): boolean;
  exitedAt: Map<number, number>;
  /** Every running member agrees on the membership (wackamole-node: views; keepalived: always). */
  ready(live: number[]): boolean;
  /** One line on how the fail-overs ran (wackamole-node: the daemons' command counters). */
  diag?(): Promise<string>;
  /** Whether a and b were in one component at time t (wackamole-node: each in the other's view). */
  sameComponent?(a: number, b: number, t: number): boolean;
  /** The holder of VIP k in steady state when it is fixed by configuration (keepalived priorities). */
  expected?(k: number): number;
  /**
   * Spreads the VIPs evenly over the live members before a trial (wackamole-node: `wackactl
   * balance`). The lab runs with balancing off so that no periodic round moves a VIP during a
   * trial; this gives each trial the steady state the default periodic balancing reaches, where a
   * victim holds ⌈VIPs / nodes⌉ groups at most, as a keepalived node masters one.
   */
  balance?(live: number[]): Promise<void>;
  tail(n: number): string;
  stopAll(): Promise<void>;
}

interface Case {
  system: string;
  profile: string;
  detail: string;
  nodes: number;
  failure: Failure;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  meanMs: number | null;
  trials: number;
  samples: number;
  /** Moved VIPs that did not answer within the trial's limit. */
  lost: number;
  violations: number;
  violationsTwice: number;
  violationsNobody: number;
  /**
   * Moments a VIP was held by two nodes in different components (one missing from the other's
   * view: a membership flap split the
   * cluster; one holder per component is the contract), from the daemons' views: not violations.
   */
  splitHolds: number;
  staleHolds: number;
  loadAvg: [number, number, number];
  error?: string;
}

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const QUICK = argv.includes("--quick");
/** `--out FILE`: where to write (default bench/results/failover.json). */
const OUT = opt("out") ?? join(REPO, "bench", "results", "failover.json");
/**
 * `--merge [FILE,FILE...]`: also keep the cases of earlier result files (default: the --out file)
 * that this run does not measure; `--systems none --merge A,B` only combines files.
 */
const MERGE_FILES = argv.includes("--merge")
  ? (opt("merge") ?? "--").startsWith("--")
    ? [OUT]
    : (opt("merge") as string).split(",")
  : [];
if (argv.includes("--help")) {
  console.log(`usage: pnpm bench failover [--quick] [--sizes 2,4,8] [--trials N]
    [--systems wack-default,wack-fast,ka-1,ka-0.1] [--failures kill,crash,stop] [--merge]
    [--out FILE] [--merge [FILE,...]]
--merge keeps the cases of earlier result files (default: the --out file) that this run does not
measure; --systems none --merge A,B only combines files;
needs root (network namespaces) and keepalived; --quick: 2 nodes, 3 trials`);
  process.exit(0);
}
const SIZES = (opt("sizes") ?? (QUICK ? "2" : "2,4,8")).split(",").map(Number);
const TRIALS = Number(opt("trials") ?? (QUICK ? 3 : 10));
const SYSTEMS = (opt("systems") ?? "wack-default,wack-fast,ka-1,ka-0.1").split(",");
const FAILURES = (opt("failures") ?? "kill,crash,stop").split(",") as Failure[];
function checkList(flag: string, got: readonly string[], known: readonly string[]): void {
  const bad = got.filter((x) => !known.includes(x));
  if (bad.length > 0) {
    console.error(`bench failover: --${flag} ${bad.join(",")}: unknown; use any of ${known.join(",")}`);
    process.exit(2);
  }
}
checkList("systems", SYSTEMS, ["wack-default", "wack-fast", "ka-1", "ka-0.1", "none"]);
checkList("failures", FAILURES, ["kill", "crash", "stop"]);
if (SIZES.some((n) => !Number.isInteger(n) || n < 2 || n > 16) || !Number.isInteger(TRIALS) || TRIALS < 1) {
  console.error("bench failover: --sizes takes node counts from 2 to 16, --trials a positive integer");
  process.exit(2);
}
const PROBE_MS = 5;
/** Namespace prefixes carry a tag of this run, so two runs (e.g. one per system) can go side by side. */
const RUN_TAG = (process.pid % 1296).toString(36).padStart(2, "0");
/** A moved VIP that has not answered by then is counted lost. */
const TRIAL_LIMIT_MS = 20_000;
/** Observation after the last moved VIP answered (violations window). */
const OBSERVE_MS = 1000;
const SETTLE_MS = 120_000;
/** A trial starts only after no VIP was added or removed anywhere for this long. */
const QUIET_MS = 2000;

const load = (): [number, number, number] =>
  loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number];

function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}
const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);

function makeSystem(lab: FailoverLab, name: string): System {
  if (name.startsWith("wack-")) {
    const profile = name === "wack-fast" ? "fast" : "default";
    const w = new WackCluster(lab, {
      profile,
      matureMs: 1000,
      holdOffMs: 1000,
      balance: { mode: "off" },
      logLevel: "info",
    });
    return {
      system: "wackamole-node",
      profile,
      detail: `membership profile ${profile}`,
      startAll: () => w.startAll(),
      start: (n) => void w.start(n),
      stop: (n, s) => w.stop(n, s),
      running: (n) => w.running(n),
      exitedAt: w.exitedAt,
      ready: (live) => {
        const want = live.join(",");
        return live.every(
          (n) =>
            (w.viewOf(n) ?? [])
              .slice()
              .sort((a, b) => a - b)
              .join(",") === want,
        );
      },
      sameComponent: (a, b, t) => w.viewAt(a, t)?.includes(b) ?? false,
      diag: async () => {
        const keys = ["ipBatches", "ipSpareBatches", "announceFrames", "announceFallbacks", "loopStalls"];
        const sum = new Map<string, number>(keys.map((k) => [k, 0]));
        for (const n of lab.nodes) {
          if (!w.running(n)) continue;
          const c =
            ((await w.status(n)) as { counters?: Record<string, number> } | undefined)?.counters ?? {};
          for (const k of keys) sum.set(k, (sum.get(k) ?? 0) + (c[k] ?? 0));
        }
        return `running daemons' counters: ${keys.map((k) => `${k} ${sum.get(k)}`).join(", ")}`;
      },
      balance: async (live) => {
        const n = live.find((x) => w.running(x));
        if (n !== undefined) await w.ctl(n, ["balance"]);
      },
      tail: (n) => w.tail(n),
      stopAll: () => w.stopAll(),
    };
  }
  const advertInt = name === "ka-0.1" ? 0.1 : 1;
  const k = new KeepalivedCluster(lab, { advertInt });
  return {
    system: "keepalived",
    profile: advertInt === 1 ? "default" : "fast",
    detail: `advert_int ${advertInt} (VRRPv${advertInt === 1 ? 2 : 3})`,
    startAll: () => k.startAll(),
    start: async (n) => {
      // a killed keepalived leaves its addresses; remove them before it starts again
      for (const a of lab.opts.groups.flatMap((g) => g.addresses))
        await lab.tb.exec(lab.host(n), ["ip", "addr", "del", a, "dev", lab.iface]);
      k.start(n);
    },
    stop: (n, s) => k.stop(n, s),
    running: (n) => k.running(n),
    exitedAt: k.exitedAt,
    ready: () => true,
    // one VIP per group: group k is mastered by node k mod N + 1 (preemption brings it back there)
    expected: (i) => (i % lab.opts.nodes) + 1,
    tail: (n) => k.tail(n),
    stopAll: () => k.stopAll(),
  };
}

/** Whether some node holds more than ⌈VIPs / nodes⌉ VIPs. */
function unbalanced(holders: Map<string, number>, nodes: number): boolean {
  const per = new Map<number, number>();
  for (const h of holders.values()) per.set(h, (per.get(h) ?? 0) + 1);
  const cap = Math.ceil(holders.size / nodes);
  return [...per.values()].some((k) => k > cap);
}

/** Every VIP held once among `live`, answering the prober from its holder; all members agree. */
async function settle(lab: FailoverLab, sys: System, live: number[]): Promise<Map<string, number>> {
  let last = "";
  return waitFor(
    async () => {
      if (!sys.ready(live)) {
        last = "membership not agreed";
        return undefined;
      }
      const h = await lab.holders(lab.nodes);
      const st = await lab.proberStatus();
      const out = new Map<string, number>();
      const bad: string[] = [];
      lab.vips.forEach((v, i) => {
        const hs = h.get(v) ?? [];
        const s = st[i] as [number, number, number];
        if (hs.length !== 1) bad.push(`${v} held by [${hs}]`);
        else if (sys.expected !== undefined && hs[0] !== sys.expected(i))
          bad.push(`${v} held by n${hs[0]}, its master is n${sys.expected(i)}`);
        else if (s[0] !== hs[0] || s[1] > 300)
          bad.push(`${v} answered by ${s[0]} ${Math.round(s[1])} ms ago`);
        else out.set(v, hs[0] as number);
      });
      // and nothing moved lately: a trial must not start in the middle of a move (a rebalance after
      // the last trial's restart), or its "fail-over" would measure that move instead
      const lastMove = lab.addrEvents.at(-1)?.t ?? 0;
      if (bad.length === 0 && now() - lastMove < QUIET_MS)
        bad.push(`a VIP moved ${Math.round(now() - lastMove)} ms ago`);
      last = bad.join("; ");
      return bad.length === 0 ? out : undefined;
    },
    SETTLE_MS,
    () => `steady state: ${last}\n${lab.nodes.map((n) => sys.tail(n)).join("\n")}`,
    100,
  );
}

async function runCase(lab: FailoverLab, sys: System, failure: Failure): Promise<Case> {
  const N = lab.opts.nodes;
  const samples: number[] = [];
  let lost = 0;
  let twice = 0;
  let nobody = 0;
  let split = 0;
  let stale = 0;
  let trials = 0;
  const loadStart = load();
  const c: Case = {
    system: sys.system,
    profile: sys.profile,
    detail: sys.detail,
    nodes: N,
    failure,
    p50Ms: null,
    p99Ms: null,
    maxMs: null,
    meanMs: null,
    trials: 0,
    samples: 0,
    lost: 0,
    violations: 0,
    violationsTwice: 0,
    violationsNobody: 0,
    splitHolds: 0,
    staleHolds: 0,
    loadAvg: loadStart,
  };
  try {
    for (let t = 0; t < TRIALS; t++) {
      let holders = await settle(lab, sys, lab.nodes);
      if (sys.balance !== undefined && unbalanced(holders, lab.nodes.length)) {
        await sys.balance(lab.nodes);
        holders = await settle(lab, sys, lab.nodes);
      }
      const victim = holders.get(lab.vips[0] as string) as number;
      const moved = lab.vips.filter((v) => holders.get(v) === victim);
      const initial = await lab.held();
      const initialAt = now();
      await sleep(100 + Math.random() * 300); // not in phase with heartbeats or adverts
      const requested = now();
      let fault = requested;
      let cutDone: number | undefined;
      let clockOffset: number | undefined;
      if (failure === "kill") void sys.stop(victim, "SIGKILL");
      else if (failure === "stop") void sys.stop(victim, "SIGTERM");
      else {
        // the cut is an `ip` process: count from the moment the kernel took the port down
        await lab.tb.linkDown(lab.host(victim), "lan");
        cutDone = now();
        clockOffset = Date.now() - cutDone;
        const { port } = lab.tb.lanPort(lab.host(victim), "lan");
        const at = await waitFor(
          () => portDownAt(lab.linkEvents, port, requested - 5),
          2000,
          () => `no port-down event for ${port} (n${victim})`,
          2,
        );
        fault = Math.max(requested, at);
      }
      const settledAt = new Map<string, number>();
      const idx = moved.map((v) => lab.vips.indexOf(v));
      await waitFor(
        () => {
          for (const e of lab.changes) {
            if (e.recvMs <= fault || e.node === victim || e.node === 0) continue;
            const v = lab.vips[e.vip] as string;
            if (idx.includes(e.vip) && !settledAt.has(v)) settledAt.set(v, e.recvMs);
          }
          return settledAt.size === moved.length || now() - fault > TRIAL_LIMIT_MS;
        },
        TRIAL_LIMIT_MS + 10_000,
        () => "fail-over",
        10,
      );
      // fail-over done = first reply from the new holder, or the monitor's record of its address if
      // later (a monitor read late must not make the VIP look unheld after the reply proved it held)
      const doneAt = new Map<string, number>();
      for (const [v, at] of settledAt) {
        const add = lab.addrEvents.find((e) => e.add && e.vip === v && e.node !== victim && e.t > fault);
        doneAt.set(v, Math.max(at, add?.t ?? at));
      }
      for (const v of moved) {
        const at = settledAt.get(v);
        if (at === undefined) {
          lost++;
          settledAt.set(v, Number.POSITIVE_INFINITY); // never completed: "nobody" is not counted for it
        } else samples.push(at - fault);
      }
      await sleep(OBSERVE_MS);
      const end = now();
      const members = new Map<number, number>();
      for (const n of lab.nodes) {
        if (n !== victim) members.set(n, Number.POSITIVE_INFINITY);
        else if (failure === "kill") members.set(n, fault);
        else if (failure === "stop") members.set(n, sys.exitedAt.get(n) ?? Number.POSITIVE_INFINITY);
        // crash: the victim is a component of its own
      }
      const v = countViolations({
        events: lab.addrEvents,
        initial,
        initialAt,
        vips: lab.vips,
        from: fault,
        to: end,
        members,
        settledAt: new Map([...settledAt].map(([v, t]) => [v, doneAt.get(v) ?? t])),
        ...(sys.sameComponent !== undefined ? { sameComponent: sys.sameComponent } : {}),
      });
      if (LOG_DIR !== undefined) {
        // the trial's timeline next to the daemons' logs: fault, address events, first replies
        const ev = [
          ...lab.addrEvents
            .filter((e) => e.t >= fault - 50 && e.t <= end)
            .map((e) => ({ ...e, kind: "addr" })),
          ...lab.changes
            .filter((e) => e.recvMs >= fault - 50 && e.recvMs <= end)
            .map((e) => ({ ...e, kind: "reply" })),
        ];
        mkdirSync(LOG_DIR, { recursive: true });
        appendFileSync(
          join(LOG_DIR, "trials.log"),
          `${JSON.stringify({ system: sys.system, profile: sys.profile, nodes: N, failure, trial: t + 1, victim, fault, faultRequested: requested, cutDone, clockOffset, moved, settledAt: Object.fromEntries(settledAt), events: ev })}\n`,
        );
      }
      twice += v.twice;
      nobody += v.nobody;
      split += v.splitHolds;
      stale += v.stale;
      trials++;
      // bring the victim back
      if (failure === "crash") await lab.tb.linkUp(lab.host(victim), "lan");
      else {
        if (sys.running(victim)) await sys.stop(victim, "SIGKILL");
        await sys.start(victim);
      }
      process.stdout.write(
        `  ${sys.system} ${sys.profile} n=${N} ${failure} trial ${t + 1}: victim n${victim}, ` +
          `${moved.map((x) => `${x} ${Number.isFinite(settledAt.get(x)) ? `${Math.round((settledAt.get(x) as number) - fault)} ms` : "lost"}`).join(", ")}` +
          `${v.twice + v.nobody > 0 ? `, violations ${v.twice}+${v.nobody}` : ""}` +
          `${v.splitHolds > 0 ? `, split holds ${v.splitHolds} (membership flap)` : ""}` +
          `${v.details.length > 0 ? ` (${v.details.join("; ")})` : ""}\n`,
      );
    }
    await settle(lab, sys, lab.nodes);
    if (sys.diag !== undefined) process.stdout.write(`  ${await sys.diag()}\n`);
  } catch (e) {
    c.error = (e as Error).message.slice(0, 2000);
    process.stdout.write(`  error: ${c.error}\n`);
  }
  Object.assign(c, {
    p50Ms: r1(pct(samples, 50)),
    p99Ms: r1(pct(samples, 99)),
    maxMs: r1(samples.length > 0 ? Math.max(...samples) : null),
    meanMs: r1(samples.length > 0 ? samples.reduce((a, b) => a + b, 0) / samples.length : null),
    trials,
    samples: samples.length,
    lost,
    violations: twice + nobody,
    violationsTwice: twice,
    violationsNobody: nobody,
    splitHolds: split,
    staleHolds: stale,
    loadAvg: load().map((x, i) => Math.max(x, loadStart[i] as number)) as [number, number, number],
  });
  return c;
}

async function main(): Promise<number> {
  if (!canRun()) {
    console.log("pnpm bench failover: needs root and network namespaces (run as root); nothing measured.");
    return process.env.CI === "true" ? 1 : 0;
  }
  const cases: Case[] = [];
  const started = new Date().toISOString();
  const loadAtStart = load();
  for (const N of SYSTEMS.includes("none") ? [] : SIZES) {
    const groups = makeGroups(250, Math.max(4, N), 1, 0);
    const lab = await FailoverLab.create({ prefix: `fob${N}${RUN_TAG}`, nodes: N, net: 250, groups });
    try {
      await lab.startResponders();
      await lab.startProber("cl", PROBE_MS);
      await lab.startMonitors();
      for (const name of SYSTEMS) {
        const sys = makeSystem(lab, name);
        process.stdout.write(`${sys.system} (${sys.detail}), ${N} nodes, ${groups.length} VIPs\n`);
        sys.startAll();
        for (const f of FAILURES) {
          cases.push(await runCase(lab, sys, f));
          // partial results survive an interrupted run
          mkdirSync(dirname(OUT), { recursive: true });
          writeFileSync(
            `${OUT}.partial`,
            `${JSON.stringify({ bench: "failover", partial: true, started, cases }, null, 2)}\n`,
          );
        }
        await sys.stopAll();
        for (const n of lab.nodes)
          for (const g of groups)
            for (const a of g.addresses)
              await lab.tb.exec(lab.host(n), ["ip", "addr", "del", a, "dev", lab.iface]);
      }
    } finally {
      await lab.destroy();
    }
  }
  const out = {
    bench: "failover",
    started,
    finished: new Date().toISOString(),
    quick: QUICK,
    trialsPerCase: TRIALS,
    probeIntervalMs: PROBE_MS,
    loadAvgStart: loadAtStart,
    loadAvgEnd: load(),
    note:
      "time from the fault (taken just before it is injected) to the first client reply through each moved VIP from another node; " +
      "keepalived profile default = advert_int 1 (VRRPv2), fast = advert_int 0.1 (VRRPv3); machine shared, see loadAvg",
    cases,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  const mergedFrom: { file: string; started?: string; loadAvgStart?: number[] }[] = [];
  for (const f of MERGE_FILES) {
    if (!existsSync(f)) continue;
    const old = JSON.parse(readFileSync(f, "utf8")) as {
      cases?: Case[];
      started?: string;
      loadAvgStart?: number[];
    };
    const key = (c: Case) => `${c.system}/${c.profile}/${c.nodes}/${c.failure}`;
    const mine = new Set(cases.map(key));
    cases.push(...(old.cases ?? []).filter((c) => !mine.has(key(c))));
    mergedFrom.push({
      file: f,
      ...(old.started ? { started: old.started } : {}),
      ...(old.loadAvgStart ? { loadAvgStart: old.loadAvgStart } : {}),
    });
  }
  // cases of separate runs were not measured in the same run: each keeps its own loadAvg
  if (mergedFrom.length > 0) Object.assign(out, { mergedFrom });
  writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
  rmSync(`${OUT}.partial`, { force: true });

  const header = [
    "nodes",
    "failure",
    "system",
    "profile",
    "p50 ms",
    "p99 ms",
    "max ms",
    "trials",
    "lost",
    "violations",
    "split",
    "stale",
    "load",
  ];
  const rows = [header];
  const sorted = [...cases].sort(
    (a, b) =>
      a.nodes - b.nodes ||
      a.failure.localeCompare(b.failure) ||
      a.system.localeCompare(b.system) ||
      a.profile.localeCompare(b.profile),
  );
  for (const c of sorted) {
    rows.push([
      String(c.nodes),
      c.failure,
      c.system,
      c.system === "keepalived" ? (c.detail.split(" (")[0] as string) : c.profile,
      String(c.p50Ms ?? "-"),
      String(c.p99Ms ?? "-"),
      String(c.maxMs ?? "-"),
      `${c.trials}${c.error ? "!" : ""}`,
      String(c.lost),
      `${c.violations}`,
      String(c.splitHolds ?? "-"),
      String(c.staleHolds),
      c.loadAvg[0].toFixed(1),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  console.log("");
  for (const r of rows) console.log(r.map((x, i) => x.padEnd(widths[i] ?? 0)).join("  "));
  const aim = (sys: string, profile: string, failure: Failure, ms: number) => {
    const cs = cases.filter((c) => c.system === sys && c.profile === profile && c.failure === failure);
    const worst = Math.max(...cs.map((c) => c.p99Ms ?? Number.POSITIVE_INFINITY));
    return cs.length === 0
      ? "not run"
      : `${worst <= ms ? "met" : "not met"} (worst p99 ${worst} ms, aim ${ms} ms)`;
  };
  console.log(
    `\naims (wackamole-node): crash p99 default ${aim("wackamole-node", "default", "crash", 600)}; ` +
      `crash p99 fast ${aim("wackamole-node", "fast", "crash", 200)}; ` +
      `stop p99 default ${aim("wackamole-node", "default", "stop", 100)}; ` +
      `violations ${cases.filter((c) => c.system === "wackamole-node").reduce((a, c) => a + c.violations, 0)} (aim 0)`,
  );
  console.log(
    `load average at start ${loadAtStart.join(" ")}, at end ${out.loadAvgEnd.join(" ")}; wrote ${OUT}`,
  );
  return 0;
}

process.exitCode = await main();
