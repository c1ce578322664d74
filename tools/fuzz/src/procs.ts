/**
 * The processes the fuzzer and the soak benchmark run: spines-node daemons (spawned with tsx from
 * apps/spines-node/src/main.ts) and membership members (member-proc.ts, forked with an IPC channel),
 * plus what is read about them from outside: RSS from /proc and the kernel's UDP drop counter.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ControlClient } from "@spines-ts/spines-node";
import type { MemberArgs, MemberStatus } from "./member-proc.ts";

const require = createRequire(import.meta.url);
/** apps/spines-node/src/main.ts, found through the workspace dependency. */
export const SPINES_MAIN = join(dirname(require.resolve("@spines-ts/spines-node")), "main.ts");
const MEMBER_MAIN = join(import.meta.dirname, "member-proc.ts");

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const tmp = (prefix = "fuzz-"): string => mkdtempSync(join(tmpdir(), prefix));

/** Free UDP ports on `host` (held until all are picked, then released). */
export async function freeUdpPorts(n: number, host = "127.0.0.1"): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createSocket("udp4");
      await new Promise<void>((r) => s.bind(0, host, () => r()));
      return s;
    }),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** Resident set size of a process in bytes (0 when it is gone). */
export function rssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Datagrams the kernel dropped at the UDP socket bound to `port` (receive buffer full), per /proc. */
export function kernelUdpDrops(port: number): number {
  let total = 0;
  for (const f of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(hex)) total += Number(cols[cols.length - 1] ?? 0);
    }
  }
  return total;
}

export interface Daemon {
  readonly id: number;
  readonly port: number;
  readonly control: string;
  readonly clientSocket: string;
  readonly args: readonly string[];
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** One control request (a fresh connection each time; rejects when the daemon does not answer). */
  call<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
}

function launch(
  args: readonly string[],
  entry: readonly string[] = ["--import", "tsx", SPINES_MAIN],
): {
  proc: ChildProcess;
  exited: Daemon["exited"];
  stderr: () => string;
} {
  const proc = spawn(process.execPath, [...entry, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 100_000) err = err.slice(-50_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { proc, exited, stderr: () => err };
}

async function controlCall<T>(path: string, cmd: string, args: Record<string, unknown> = {}): Promise<T> {
  const c = await ControlClient.connect(path);
  try {
    return await Promise.race([
      c.call<T>(cmd, args),
      sleep(15_000).then(() => {
        throw new Error(`control ${cmd} at ${path}: no answer in 15 s`);
      }),
    ]);
  } finally {
    c.close();
  }
}

async function waitReady(d: Daemon, timeoutMs: number, what = "spines-node", probe = "ping"): Promise<void> {
  const t0 = Date.now();
  let dead = false;
  void d.exited.then(() => {
    dead = true;
  });
  for (;;) {
    if (dead) throw new Error(`${what} ${d.id} exited during startup:\n${d.stderr()}`);
    try {
      await controlCall(d.control, probe);
      return;
    } catch {
      if (Date.now() - t0 > timeoutMs)
        throw new Error(`spines-node ${d.id}: control socket not up in ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}

export interface DaemonSpec {
  id: number;
  port: number;
  neighbors: { id: number; host: string; port: number }[];
  dir: string;
  extraArgs?: string[];
}

/** Spawns one spines-node and resolves once its control socket answers. */
export async function startDaemon(spec: DaemonSpec, timeoutMs = 180_000): Promise<Daemon> {
  const control = join(spec.dir, `n${spec.id}.ctl`);
  const clientSocket = join(spec.dir, `n${spec.id}.sock`);
  const args = [
    "--id",
    String(spec.id),
    "--listen",
    `127.0.0.1:${spec.port}`,
    "--control",
    control,
    "--client-socket",
    clientSocket,
    "--log-level",
    "error",
    ...spec.neighbors.flatMap((n) => ["--neighbor", `${n.id}@${n.host}:${n.port}`]),
    ...(spec.extraArgs ?? []),
  ];
  const l = launch(args);
  const d: Daemon = {
    id: spec.id,
    port: spec.port,
    control,
    clientSocket,
    args,
    proc: l.proc,
    exited: l.exited,
    stderr: l.stderr,
    call: (cmd, a) => controlCall(control, cmd, a),
  };
  await waitReady(d, timeoutMs);
  return d;
}

/** Starts a killed daemon again with the same arguments (same control and client socket paths). */
export async function restartDaemon(d: Daemon, timeoutMs = 180_000): Promise<void> {
  const l = launch(d.args);
  d.proc = l.proc;
  d.exited = l.exited;
  d.stderr = l.stderr;
  await waitReady(d, timeoutMs);
}

export function alive(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

export interface Member {
  readonly id: number;
  readonly port: number;
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set when the member reported an uncaught exception before dying. */
  crash: string | undefined;
  status(): Promise<MemberStatus>;
  stop(): Promise<void>;
}

/** Forks one membership member and resolves once it has bound its socket. */
export async function startMember(a: MemberArgs): Promise<Member> {
  const proc = fork(MEMBER_MAIN, [JSON.stringify(a)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  proc.stderr?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  let seq = 0;
  const waiting = new Map<number, (s: MemberStatus) => void>();
  const m: Member = {
    id: a.id,
    port: a.port,
    proc,
    exited,
    crash: undefined,
    status: () =>
      new Promise<MemberStatus>((resolve, reject) => {
        if (!alive(proc) || !proc.connected) {
          reject(new Error(`member ${a.id} is not running`));
          return;
        }
        const s = ++seq;
        const t = setTimeout(() => {
          waiting.delete(s);
          reject(new Error(`member ${a.id}: no status in 15 s`));
        }, 15_000);
        waiting.set(s, (st) => {
          clearTimeout(t);
          resolve(st);
        });
        proc.send({ cmd: "status", seq: s });
      }),
    stop: async () => {
      if (alive(proc) && proc.connected) proc.send({ cmd: "stop" });
      await Promise.race([exited, sleep(3000)]);
      if (alive(proc)) proc.kill("SIGKILL");
    },
  };
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`member ${a.id} did not start in 180 s`)), 180_000);
    proc.on("message", (msg: { ready?: boolean; seq?: number; status?: MemberStatus; uncaught?: string }) => {
      if (msg.ready) {
        clearTimeout(t);
        resolve();
      } else if (msg.uncaught !== undefined) m.crash = msg.uncaught;
      else if (msg.seq !== undefined && msg.status) waiting.get(msg.seq)?.(msg.status);
    });
    void exited.then(({ code }) => {
      clearTimeout(t);
      reject(new Error(`member ${a.id} exited (${code}) during startup`));
    });
  });
  return m;
}

/** apps/wackamole-node/bin/wackamole-node.js (runs the TypeScript sources with tsx in the workspace). */
export const WACKAMOLE_BIN = join(
  import.meta.dirname,
  "..",
  "..",
  "..",
  "apps",
  "wackamole-node",
  "bin",
  "wackamole-node.js",
);

export interface WackamoleSpec {
  id: number;
  port: number;
  peers: { id: number; host: string; port: number }[];
  dir: string;
  groups: { name: string; addresses: string[] }[];
}

/**
 * Spawns one wackamole-node with the dry-run address driver (no root, addresses untouched) and a
 * JSON config; resolves once its control socket answers. Its control protocol is the same JSON
 * lines as spines-node's, so the same client reads its `status`.
 */
export async function startWackamole(spec: WackamoleSpec, timeoutMs = 180_000): Promise<Daemon> {
  const control = join(spec.dir, `w${spec.id}.sock`);
  const config = join(spec.dir, `w${spec.id}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      id: spec.id,
      group: "fuzz-wackamole",
      bind: { host: "127.0.0.1", port: spec.port },
      peers: spec.peers,
      vips: { groups: spec.groups, matureMs: 300, holdOffMs: 500, balance: { mode: "immediate" } },
      driver: "dry-run",
      control: { socket: control },
      log: { level: "error" },
    }),
  );
  const args = ["--config", config];
  const l = launch(args, [WACKAMOLE_BIN]);
  const d: Daemon = {
    id: spec.id,
    port: spec.port,
    control,
    clientSocket: "",
    args,
    proc: l.proc,
    exited: l.exited,
    stderr: l.stderr,
    call: (cmd, a) => controlCall(control, cmd, a),
  };
  await waitReady(d, timeoutMs, "wackamole-node", "status");
  return d;
}
