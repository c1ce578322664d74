/**
 * The live fuzz: three spines-node daemons (a line 1-2-3) carrying a checked session from node 1 to
 * node 3, a three-member membership group with a stable view, and a three-node wackamole-node
 * cluster (dry-run address driver) with a stable view; the fuzzer sends seeded mutations
 * of the golden wire vectors at all six, from an address every target has configured as neighbour /
 * peer 9 (so frames pass the source-address filter and reach the decoders and the protocol
 * cores), and from an address nobody knows. Mutation kinds run as phases, each followed by a health
 * check, so a disturbance is pinned to the kind that caused it.
 */
import { createSocket, type Socket } from "node:dgram";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "@spines-ts/primitives";
import { registry } from "@spines-ts/wire";
import { type Corpus, loadCorpus, type SeedFrame } from "./corpus.ts";
import type { MemberStatus } from "./member-proc.ts";
import { MUTATION_KINDS, type MutationContext, type MutationKind, mutate } from "./mutate.ts";
import {
  alive,
  type Daemon,
  freeUdpPorts,
  kernelUdpDrops,
  type Member,
  rssOf,
  sleep,
  startDaemon,
  startMember,
  startWackamole,
  tmp,
} from "./procs.ts";
import { type CheckedStream, type StreamReport, startCheckedStream } from "./stream.ts";

/** The node / member id every target has configured for the fuzzer's neighbour socket. */
export const FUZZER_ID = 9;
const GROUP = "fuzz-target";
/** Membership timing tolerant of a loaded machine: the fuzz is about malformed input, not timing. */
const TOLERANT_TIMING = {
  heartbeatIntervalMs: 200,
  failureTimeoutMs: 4000,
  retransmitMs: 40,
  viewChangeTimeoutMs: 2000,
};

export interface FuzzOptions {
  /** Packets to send in all (split evenly over the mutation kinds). */
  count: number;
  seed: number;
  /** Packets per second the fuzzer offers (all targets together). */
  rate: number;
  /** Bytes per second of the live session. */
  streamBytesPerSec?: number;
  /** Membership timing: "tolerant" (default) or the core's "default" profile. */
  membershipTiming?: "tolerant" | "default";
  /** RSS growth (bytes) above which a process counts as growing. */
  rssGrowthLimit?: number;
  /**
   * The daemons' session dead-peer timeout (default 60 s, the daemon's own default is 10 s): on a
   * loaded machine a starved daemon can stay silent for 10 s without any fuzz packet. A fuzz
   * packet that breaks the session still shows: a reset ends it with an error, and a stall leaves
   * bytes undelivered at the end.
   */
  sessionDeadPeerMs?: number;
  /** Seconds of quiet (no fuzz packets) measured before the fuzz, as the baseline of view churn. */
  baselineSec?: number;
  /** Also fuzz a 3-node wackamole-node cluster (dry-run driver); default true. */
  wackamole?: boolean;
  log?: (line: string) => void;
}

type Source = "neighbour" | "unknown";

interface TargetStats {
  name: string;
  kind: "spines-node" | "membership" | "wackamole-node";
  pid: number | undefined;
  port: number;
  sent: number;
  sentBySource: Record<Source, number>;
  kernelDrops: number;
  countersBefore: Record<string, number>;
  countersAfter: Record<string, number>;
  /** after − before for every counter that moved. */
  drops: Record<string, number>;
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
  alive: boolean;
  exit: string | null;
}

export interface PhaseResult {
  kind: MutationKind;
  sent: number;
  durationSec: number;
  allAlive: boolean;
  viewUnchanged: boolean;
  streamIntact: boolean;
  streamBytes: number;
  notes: string[];
}

export interface FuzzResult {
  ok: boolean;
  seed: number;
  packetsSent: number;
  rateOffered: number;
  durationSec: number;
  /** Seconds spent sending (the phases). */
  sendSec: number;
  byKind: Record<string, number>;
  bySource: Record<Source, number>;
  targets: TargetStats[];
  phases: PhaseResult[];
  session: StreamReport & { undisturbed: boolean };
  membership: {
    viewBefore: { key: string; members: number[] } | null;
    viewAfter: ({ key: string; members: number[] } | null)[];
    viewEvents: number[];
    undisturbed: boolean;
  };
  memory: { bounded: boolean; growthLimitBytes: number };
  failures: string[];
  /**
   * The same checks over `baselineSec` of quiet before the fuzz: view changes and fail-overs seen
   * without any fuzz packet are the machine's (load), not the fuzz's.
   */
  baseline: {
    sec: number;
    sessionBytes: number;
    memberViewEvents: number[];
    wackViewEvents: number[];
    wackFailovers: number[];
  };
  wackamole: {
    fuzzed: boolean;
    viewBefore: string | null;
    viewAfter: (string | null)[];
    /** View installations and fail-overs counted by each daemon during the run. */
    viewEvents: number[];
    failovers: number[];
    undisturbed: boolean;
  };
}

/** Numeric counters of a daemon's `status`, flattened (`decodeErrorsByCode.X` etc.). */
function flatten(prefix: string, v: unknown, out: Record<string, number>): void {
  if (typeof v === "number") out[prefix] = v;
  else if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  }
}

async function daemonCounters(d: Daemon): Promise<Record<string, number>> {
  const st = await d.call<{ counters: Record<string, unknown> }>("status");
  const out: Record<string, number> = {};
  const c = { ...st.counters };
  delete c.emulation;
  delete c.clientProtocol;
  delete c.control;
  delete c.datagrams;
  flatten("", c, out);
  return out;
}

function memberCounters(s: MemberStatus): Record<string, number> {
  const out: Record<string, number> = {};
  flatten("", { ...s.stats, host: s.host, knownPeers: s.knownPeers, listenerErrors: s.listenerErrors }, out);
  return out;
}

function delta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Sends with a bound on datagrams handed to the kernel but not yet confirmed. */
class Sender {
  outstanding = 0;
  errors = 0;
  readonly sock: Socket;
  constructor(sock: Socket) {
    this.sock = sock;
  }
  send(b: Uint8Array, port: number): void {
    this.outstanding++;
    this.sock.send(b, port, "127.0.0.1", (e) => {
      this.outstanding--;
      if (e) this.errors++;
    });
  }
}

async function bind(host: string, port: number): Promise<Socket> {
  const s = createSocket({ type: "udp4", sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(port, host, () => {
      s.off("error", reject);
      resolve();
    });
  });
  s.on("message", () => {}); // heartbeats and hellos the targets send to neighbour 9
  s.on("error", () => {});
  return s;
}

export async function runLiveFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const log = opts.log ?? (() => {});
  const growthLimit = opts.rssGrowthLimit ?? 64 * 1024 * 1024;
  const corpus: Corpus = loadCorpus();
  const types = registry.specs.map((s) => s.type);
  const rng = new Rng(opts.seed);
  const failures: string[] = [];
  const dir = tmp();
  const ports = await freeUdpPorts(10);
  const [p1, p2, p3, m1, m2, m3, pf] = ports as [number, number, number, number, number, number, number];
  const wp = ports.slice(7, 10);
  const withWack = opts.wackamole ?? true;
  const nbSock = await bind("127.0.0.1", pf);
  const unkSock = await bind("127.0.0.3", 0);
  const nb = new Sender(nbSock);
  const unk = new Sender(unkSock);
  const fz = { id: FUZZER_ID, host: "127.0.0.1", port: pf };
  const daemons: Daemon[] = [];
  const members: Member[] = [];
  const wacks: Daemon[] = [];
  let stream: CheckedStream | undefined;
  const t0 = performance.now();
  try {
    log("starting 3 spines-node daemons (line 1-2-3, fuzzer = neighbour 9 of each)");
    const dp = [p1, p2, p3];
    const daemonConfig = join(dir, "daemon.json");
    writeFileSync(
      daemonConfig,
      JSON.stringify({ session: { deadPeerTimeoutMs: opts.sessionDeadPeerMs ?? 60_000 } }),
    );
    daemons.push(
      ...(await Promise.all(
        [1, 2, 3].map((id) =>
          startDaemon({
            id,
            port: dp[id - 1] as number,
            dir,
            neighbors: [
              ...(id > 1 ? [{ id: id - 1, host: "127.0.0.1", port: dp[id - 2] as number }] : []),
              ...(id < 3 ? [{ id: id + 1, host: "127.0.0.1", port: dp[id] as number }] : []),
              fz,
            ],
            extraArgs: ["--config", daemonConfig],
          }),
        ),
      )),
    );
    const [d1, , d3] = daemons as [Daemon, Daemon, Daemon];
    for (let i = 0; ; i++) {
      const routes = await d1.call<{ dst: number }[]>("routes");
      if (routes.some((r) => r.dst === 3)) break;
      if (i > 1800) throw new Error("no route from node 1 to node 3 after 180 s");
      await sleep(100);
    }
    log("session 1 -> 3 (checked byte pattern)");
    stream = await startCheckedStream({
      fromSocket: d1.clientSocket,
      toSocket: d3.clientSocket,
      toNode: 3,
      port: 5000,
      bytesPerSec: opts.streamBytesPerSec ?? 256 * 1024,
      salt: opts.seed,
    });

    log("starting 3 membership members (fuzzer = configured peer 9)");
    const mp = [m1, m2, m3];
    members.push(
      ...(await Promise.all(
        [1, 2, 3].map((id) =>
          startMember({
            id,
            port: mp[id - 1] as number,
            group: GROUP,
            peers: [
              ...[1, 2, 3]
                .filter((x) => x !== id)
                .map((x) => ({ id: x, host: "127.0.0.1", port: mp[x - 1] as number })),
              fz,
            ],
            ...(opts.membershipTiming === "default" ? {} : { timing: TOLERANT_TIMING }),
          }),
        ),
      )),
    );
    let viewBefore: { key: string; members: number[] } | null = null;
    for (let i = 0; ; i++) {
      const st = await Promise.all(members.map((m) => m.status()));
      const keys = new Set(st.map((s) => s.view?.key));
      const v = st[0]?.view;
      if (keys.size === 1 && v && v.members.join() === "1,2,3") {
        viewBefore = v;
        break;
      }
      if (i > 900)
        throw new Error(`no stable 3-member view after 180 s: ${JSON.stringify(st.map((s) => s.view))}`);
      await sleep(200);
    }

    interface WackStatus {
      view: { id: string; members: number[] } | null;
      counters: Record<string, number>;
    }
    let wackViewBefore: string | null = null;
    if (withWack) {
      log("starting 3 wackamole-node daemons (dry-run driver; fuzzer = configured peer 9)");
      const peers = [1, 2, 3].map((id) => ({ id, host: "127.0.0.1", port: wp[id - 1] as number }));
      wacks.push(
        ...(await Promise.all(
          [1, 2, 3].map((id) =>
            startWackamole({
              id,
              port: wp[id - 1] as number,
              dir,
              peers: [...peers, fz],
              groups: [1, 2, 3].map((g) => ({ name: `g${g}`, addresses: [`lo 10.77.${g}.1/32`] })),
            }),
          ),
        )),
      );
      for (let i = 0; ; i++) {
        const st = await Promise.all(wacks.map((w) => w.call<WackStatus>("status")));
        const ids = new Set(st.map((x) => x.view?.id));
        const v = st[0]?.view;
        if (ids.size === 1 && v && v.members.join() === "1,2,3") {
          wackViewBefore = v.id;
          break;
        }
        if (i > 900)
          throw new Error(
            `wackamole-node: no stable 3-member view after 180 s: ${JSON.stringify(st.map((x) => x.view))}`,
          );
        await sleep(200);
      }
      log(`wackamole view ${wackViewBefore}`);
    }
    log(`view ${viewBefore.key} members ${viewBefore.members.join(",")}`);
    await sleep(1000);

    // Baseline: the same observation with no fuzz packet, in the same run.
    const baselineSec = opts.baselineSec ?? 10;
    const wackCounters = async () =>
      Promise.all(wacks.map(async (w) => (await w.call<WackStatus>("status")).counters));
    const b0 = {
      session: stream.report().receivedBytes,
      members: (await Promise.all(members.map((m) => m.status()))).map((x) => x.views),
      wack: await wackCounters(),
    };
    log(`baseline: ${baselineSec} s without fuzz packets`);
    await sleep(baselineSec * 1000);
    const b1 = {
      session: stream.report().receivedBytes,
      members: (await Promise.all(members.map((m) => m.status()))).map((x) => x.views),
      wack: await wackCounters(),
    };
    const baseline = {
      sec: baselineSec,
      sessionBytes: b1.session - b0.session,
      memberViewEvents: b1.members.map((v, i) => v - (b0.members[i] ?? 0)),
      wackViewEvents: b1.wack.map((c, i) => (c.views ?? 0) - (b0.wack[i]?.views ?? 0)),
      wackFailovers: b1.wack.map((c, i) => (c.failovers ?? 0) - (b0.wack[i]?.failovers ?? 0)),
    };
    log(`baseline: ${JSON.stringify(baseline)}`);
    if (withWack) {
      const st = await wacks[0]?.call<WackStatus>("status");
      wackViewBefore = st?.view?.id ?? null;
    }
    const viewNow = (await members[0]?.status())?.view;
    if (viewNow?.key !== viewBefore.key) {
      log(`membership view changed during the baseline: ${viewBefore.key} -> ${viewNow?.key}`);
      if (viewNow) viewBefore = viewNow;
    }
    const viewEventsAtStart = (await Promise.all(members.map((m) => m.status()))).map((x) => x.views);

    const targets: { t: TargetStats; send: (b: Uint8Array, s: Sender) => void; pool: SeedFrame[] }[] = [];
    const overlayFamilies = ["data", "link", "routing", "session", "frame"];
    const overlayPool = corpus.valid.filter((s) => overlayFamilies.includes(s.family));
    const mbPool = corpus.valid.filter((s) => s.family === "membership");
    const wackPool = corpus.valid.filter((s) => s.family === "membership" || s.family === "vip");
    for (const d of daemons) {
      targets.push({
        t: {
          name: `spines-node ${d.id}`,
          kind: "spines-node",
          pid: d.proc.pid,
          port: d.port,
          sent: 0,
          sentBySource: { neighbour: 0, unknown: 0 },
          kernelDrops: kernelUdpDrops(d.port),
          countersBefore: await daemonCounters(d),
          countersAfter: {},
          drops: {},
          rssBefore: rssOf(d.proc.pid),
          rssPeak: 0,
          rssAfter: 0,
          alive: true,
          exit: null,
        },
        send: (b, s) => s.send(b, d.port),
        pool: overlayPool,
      });
    }
    for (const m of members) {
      const st = await m.status();
      targets.push({
        t: {
          name: `member ${m.id}`,
          kind: "membership",
          pid: m.proc.pid,
          port: m.port,
          sent: 0,
          sentBySource: { neighbour: 0, unknown: 0 },
          kernelDrops: kernelUdpDrops(m.port),
          countersBefore: memberCounters(st),
          countersAfter: {},
          drops: {},
          rssBefore: st.rssBytes,
          rssPeak: 0,
          rssAfter: 0,
          alive: true,
          exit: null,
        },
        send: (b, s) => s.send(b, m.port),
        pool: mbPool,
      });
    }
    for (const w of wacks) {
      const st = await w.call<WackStatus>("status");
      targets.push({
        t: {
          name: `wackamole-node ${w.id}`,
          kind: "wackamole-node",
          pid: w.proc.pid,
          port: w.port,
          sent: 0,
          sentBySource: { neighbour: 0, unknown: 0 },
          kernelDrops: kernelUdpDrops(w.port),
          countersBefore: { ...st.counters },
          countersAfter: {},
          drops: {},
          rssBefore: rssOf(w.proc.pid),
          rssPeak: 0,
          rssAfter: 0,
          alive: true,
          exit: null,
        },
        send: (b, s) => s.send(b, w.port),
        pool: wackPool,
      });
    }
    for (const { t } of targets) t.rssPeak = t.rssBefore;

    const byKind: Record<string, number> = {};
    const bySource: Record<Source, number> = { neighbour: 0, unknown: 0 };
    const history: Uint8Array[] = [];
    const phases: PhaseResult[] = [];
    const perKind = Math.ceil(opts.count / MUTATION_KINDS.length);
    const memberIds = new Set([1, 2, 3]);
    let sentTotal = 0;
    const sendStart = performance.now();

    const checkHealth = async (): Promise<{
      allAlive: boolean;
      viewUnchanged: boolean;
      notes: string[];
    }> => {
      const notes: string[] = [];
      let allAlive = true;
      for (const d of daemons) {
        if (!alive(d.proc)) {
          allAlive = false;
          notes.push(
            `spines-node ${d.id} died: ${d.proc.exitCode ?? d.proc.signalCode}; ${d.stderr().slice(-2000)}`,
          );
        }
      }
      let viewUnchanged = true;
      for (const m of members) {
        if (!alive(m.proc)) {
          allAlive = false;
          viewUnchanged = false;
          notes.push(`member ${m.id} died: ${m.proc.exitCode ?? m.proc.signalCode} ${m.crash ?? ""}`);
          continue;
        }
        try {
          const st = await m.status();
          if (st.view?.key !== viewBefore?.key) {
            viewUnchanged = false;
            notes.push(`member ${m.id} view ${st.view?.key} members ${st.view?.members.join(",")}`);
          }
        } catch (e) {
          viewUnchanged = false;
          notes.push(String(e));
        }
      }
      for (const w of wacks) {
        if (!alive(w.proc)) {
          allAlive = false;
          viewUnchanged = false;
          notes.push(
            `wackamole-node ${w.id} died: ${w.proc.exitCode ?? w.proc.signalCode}; ${w.stderr().slice(-2000)}`,
          );
          continue;
        }
        try {
          const st = await w.call<WackStatus>("status");
          if (st.view?.id !== wackViewBefore) {
            viewUnchanged = false;
            notes.push(`wackamole-node ${w.id} view ${st.view?.id} members ${st.view?.members.join(",")}`);
          }
        } catch (e) {
          viewUnchanged = false;
          notes.push(String(e));
        }
      }
      for (const { t } of targets) t.rssPeak = Math.max(t.rssPeak, rssOf(t.pid));
      return { allAlive, viewUnchanged, notes };
    };

    for (const kind of MUTATION_KINDS) {
      const phaseStart = performance.now();
      let sent = 0;
      const tickMs = 10;
      const perTick = Math.max(1, Math.round((opts.rate * tickMs) / 1000));
      let next = performance.now();
      while (sent < perKind) {
        for (let i = 0; i < perTick && sent < perKind; i++) {
          const target = targets[sentTotal % targets.length] as (typeof targets)[number];
          const source: Source = rng.chance(0.7) ? "neighbour" : "unknown";
          let sender: number | undefined;
          if (target.t.kind === "spines-node") {
            const r = rng.next();
            sender = source === "neighbour" && r < 0.7 ? FUZZER_ID : r < 0.85 ? undefined : rng.uint32();
          } else {
            // never a real member's id: claiming one is an impersonation, reported separately
            sender = rng.chance(0.6) ? FUZZER_ID : 10 + rng.int(0xfffffff0);
            if (memberIds.has(sender)) sender = FUZZER_ID;
          }
          const ctx: MutationContext = {
            rng,
            pool: rng.chance(0.9) ? target.pool : corpus.valid,
            all: corpus.valid,
            invalid: corpus.invalid,
            types,
            sender,
            history,
          };
          let pkt = mutate(kind, ctx);
          if (target.t.kind !== "spines-node" && pkt.length >= 12) {
            const claimed =
              ((pkt[8] as number) << 24) | ((pkt[9] as number) << 16) | ((pkt[10] as number) << 8);
            const id = (claimed | (pkt[11] as number)) >>> 0;
            if (memberIds.has(id)) {
              pkt = pkt.slice();
              pkt[8] = 0;
              pkt[9] = 0;
              pkt[10] = 0;
              pkt[11] = FUZZER_ID;
            }
          }
          if (history.length < 256) history.push(pkt);
          else history[rng.int(256)] = pkt;
          target.send(pkt, source === "neighbour" ? nb : unk);
          target.t.sent++;
          target.t.sentBySource[source]++;
          bySource[source]++;
          sent++;
          sentTotal++;
        }
        next += tickMs;
        const wait = next - performance.now();
        if (nb.outstanding + unk.outstanding > 2000) await sleep(5);
        else if (wait > 0) await sleep(wait);
        else if (wait < -1000) next = performance.now();
        else await new Promise((r) => setImmediate(r));
      }
      byKind[kind] = sent;
      const h = await checkHealth();
      const sr = stream.report();
      const phase: PhaseResult = {
        kind,
        sent,
        durationSec: (performance.now() - phaseStart) / 1000,
        allAlive: h.allAlive,
        viewUnchanged: h.viewUnchanged,
        streamIntact: sr.intact && sr.errors.length === 0,
        streamBytes: sr.receivedBytes,
        notes: h.notes,
      };
      phases.push(phase);
      log(
        `${kind.padEnd(18)} ${String(sent).padStart(8)} sent  alive=${h.allAlive} view=${h.viewUnchanged} ` +
          `stream=${phase.streamIntact} (${(sr.receivedBytes / 1024).toFixed(0)} KiB)${h.notes.length ? `  ${h.notes.join("; ")}` : ""}`,
      );
    }
    const sendSec = (performance.now() - sendStart) / 1000;
    // let queued datagrams drain and the session catch up
    while (nb.outstanding + unk.outstanding > 0) await sleep(10);
    await sleep(3000);

    for (const [i, d] of daemons.entries()) {
      const t = (targets[i] as (typeof targets)[number]).t;
      t.alive = alive(d.proc);
      t.exit = t.alive ? null : String(d.proc.exitCode ?? d.proc.signalCode);
      t.rssAfter = rssOf(d.proc.pid);
      t.kernelDrops = kernelUdpDrops(d.port) - t.kernelDrops;
      if (t.alive) {
        t.countersAfter = await daemonCounters(d);
        t.drops = delta(t.countersBefore, t.countersAfter);
      }
    }
    const viewAfter: ({ key: string; members: number[] } | null)[] = [];
    const viewEvents: number[] = [];
    for (const [i, m] of members.entries()) {
      const t = (targets[3 + i] as (typeof targets)[number]).t;
      t.alive = alive(m.proc);
      t.exit = t.alive
        ? null
        : String(m.proc.exitCode ?? m.proc.signalCode) + (m.crash ? `: ${m.crash}` : "");
      t.kernelDrops = kernelUdpDrops(m.port) - t.kernelDrops;
      if (t.alive) {
        const st = await m.status();
        t.rssAfter = st.rssBytes;
        t.countersAfter = memberCounters(st);
        t.drops = delta(t.countersBefore, t.countersAfter);
        viewAfter.push(st.view);
        viewEvents.push(st.views - (viewEventsAtStart[i] ?? 0));
      } else {
        viewAfter.push(null);
        viewEvents.push(-1);
      }
    }
    const wackViewAfter: (string | null)[] = [];
    const wackViewEvents: number[] = [];
    const wackFailovers: number[] = [];
    for (const [i, w] of wacks.entries()) {
      const t = (targets[6 + i] as (typeof targets)[number]).t;
      t.alive = alive(w.proc);
      t.exit = t.alive ? null : String(w.proc.exitCode ?? w.proc.signalCode);
      t.rssAfter = rssOf(w.proc.pid);
      t.kernelDrops = kernelUdpDrops(w.port) - t.kernelDrops;
      if (t.alive) {
        const st = await w.call<WackStatus>("status");
        t.countersAfter = { ...st.counters };
        t.drops = delta(t.countersBefore, t.countersAfter);
        wackViewAfter.push(st.view?.id ?? null);
        wackViewEvents.push(t.drops.views ?? 0);
        wackFailovers.push(t.drops.failovers ?? 0);
      } else {
        wackViewAfter.push(null);
        wackViewEvents.push(-1);
        wackFailovers.push(-1);
      }
    }
    const wackOk =
      wackViewAfter.every((v) => v === wackViewBefore) &&
      wackViewEvents.every((n) => n === 0) &&
      wackFailovers.every((n) => n === 0);
    for (const { t } of targets) t.rssPeak = Math.max(t.rssPeak, t.rssAfter);

    const sr = await stream.finish(30_000);
    const sessionOk =
      sr.intact &&
      sr.ended &&
      sr.receivedBytes === sr.sentBytes &&
      sr.errors.length === 0 &&
      sr.sentBytes > 0;
    const viewOk = viewAfter.every((v) => v?.key === viewBefore?.key) && viewEvents.every((n) => n === 0);
    const bounded = targets.every(({ t }) => t.rssPeak - t.rssBefore <= growthLimit);
    for (const { t } of targets) {
      if (!t.alive) failures.push(`${t.name} died (${t.exit})`);
      if (t.rssPeak - t.rssBefore > growthLimit)
        failures.push(
          `${t.name} RSS grew ${((t.rssPeak - t.rssBefore) / 2 ** 20).toFixed(1)} MiB (limit ${growthLimit / 2 ** 20})`,
        );
      const thrown = (t.drops.rxHandlerErrors ?? 0) + (t.drops["host.rxHandlerErrors"] ?? 0);
      if ((t.drops.driverErrors ?? 0) > 0)
        failures.push(`${t.name}: ${t.drops.driverErrors} address driver errors`);
      if (thrown > 0) failures.push(`${t.name}: ${thrown} datagram handler(s) threw (rxHandlerErrors)`);
    }
    if (!sessionOk) failures.push(`session disturbed: ${JSON.stringify(sr)}`);
    if (!viewOk)
      failures.push(`membership view changed: ${JSON.stringify({ viewBefore, viewAfter, viewEvents })}`);
    if (withWack && !wackOk)
      failures.push(
        `wackamole-node view changed: ${JSON.stringify({ wackViewBefore, wackViewAfter, wackViewEvents, wackFailovers })}`,
      );
    return {
      ok: failures.length === 0,
      seed: opts.seed,
      packetsSent: sentTotal,
      rateOffered: opts.rate,
      durationSec: (performance.now() - t0) / 1000,
      byKind,
      bySource,
      targets: targets.map((x) => x.t),
      phases,
      session: { ...sr, undisturbed: sessionOk },
      membership: { viewBefore, viewAfter, viewEvents, undisturbed: viewOk },
      memory: { bounded, growthLimitBytes: growthLimit },
      failures,
      baseline,
      sendSec,
      wackamole: {
        fuzzed: withWack,
        viewBefore: wackViewBefore,
        viewAfter: wackViewAfter,
        viewEvents: wackViewEvents,
        failovers: wackFailovers,
        undisturbed: !withWack || wackOk,
      },
    };
  } finally {
    stream?.close();
    for (const d of daemons) if (alive(d.proc)) d.proc.kill("SIGTERM");
    for (const w of wacks) if (alive(w.proc)) w.proc.kill("SIGTERM");
    await Promise.all(members.map((m) => m.stop()));
    await Promise.all(wacks.map((w) => Promise.race([w.exited, sleep(5000)])));
    for (const w of wacks) if (alive(w.proc)) w.proc.kill("SIGKILL");
    await Promise.all(daemons.map((d) => Promise.race([d.exited, sleep(5000)])));
    for (const d of daemons) if (alive(d.proc)) d.proc.kill("SIGKILL");
    nbSock.close();
    unkSock.close();
  }
}
