import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ControlClient } from "@spines-ts/daemon-kit";
import { afterAll } from "vitest";
import { stringify } from "yaml";
import type { ListEntry, StatusResult } from "../src/daemon.ts";

export const APP = join(import.meta.dirname, "..");
export const DAEMON_BIN = join(APP, "bin", "wackamole-node.js");
export const CTL_BIN = join(APP, "bin", "wackactl.js");
export const execFileP = promisify(execFile);

export const tmp = (): string => mkdtempSync(join(tmpdir(), "wack-"));

/** Free UDP ports on 127.0.0.1 (held until all are picked, then released). */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createSocket("udp4");
      await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
      return s;
    }),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

export async function freeTcpPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Polls `cond` until it holds; fails with `what` (and the last value seen) after `ms`. No timing assertion. */
export async function waitUntil<T>(
  probe: () => Promise<T> | T,
  cond: (v: T) => boolean,
  what: string,
  ms = 60_000,
): Promise<T> {
  const t0 = Date.now();
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await probe();
      if (cond(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() - t0 > ms)
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(last)}${lastErr ? ` (${String(lastErr)})` : ""}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A group table of `n` groups on the loopback interface (dry-run never touches it). */
export function groups(n: number): { name: string; addresses: string[] }[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `g${i + 1}`,
    addresses: [`lo 10.77.${i}.1/32`, ...(i % 2 === 0 ? [`lo fd77::${i + 1}/128`] : [])],
  }));
}

export interface ClusterNode {
  readonly id: number;
  readonly port: number;
  readonly config: string;
  readonly control: string;
  readonly dir: string;
}

/** Writes one config file per node of a loopback dry-run cluster. `extra` is merged into each. */
export async function writeCluster(
  dir: string,
  n: number,
  extra: (id: number) => Record<string, unknown> = () => ({}),
  groupCount = 6,
): Promise<ClusterNode[]> {
  const ports = await freeUdpPorts(n);
  const peers = ports.map((port, i) => ({ id: i + 1, host: "127.0.0.1", port }));
  return ports.map((port, i) => {
    const id = i + 1;
    const control = join(dir, `n${id}.sock`);
    const config = join(dir, `n${id}.yaml`);
    const doc = {
      id,
      bind: { host: "127.0.0.1", port },
      peers,
      vips: { groups: groups(groupCount), matureMs: 300, holdOffMs: 500, balance: { mode: "immediate" } },
      driver: "dry-run",
      control: { socket: control },
      log: { level: "info" },
      ...extra(id),
    };
    writeFileSync(config, stringify(doc));
    return { id, port, config, control, dir };
  });
}

export interface Spawned {
  readonly proc: ChildProcess;
  readonly node: ClusterNode;
  /** Every pino JSON line the daemon wrote on stdout, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  status(): Promise<StatusResult>;
  list(): Promise<ListEntry[]>;
  call<T>(cmd: string): Promise<T>;
}

async function call<T>(control: string, cmd: string): Promise<T> {
  const c = await ControlClient.connect(control);
  try {
    return await c.call<T>(cmd);
  } finally {
    c.close();
  }
}

/** Spawns the real `bin/wackamole-node.js` and resolves once its control socket answers. */
export async function spawnDaemon(
  node: ClusterNode,
  args: string[] = [],
  timeoutMs = 60_000,
): Promise<Spawned> {
  const proc = spawn(process.execPath, [DAEMON_BIN, "--config", node.config, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: APP,
  });
  let err = "";
  const logs: Record<string, unknown>[] = [];
  let partial = "";
  proc.stdout?.setEncoding("utf8");
  proc.stdout?.on("data", (d: string) => {
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) {
      try {
        logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        logs.push({ raw: l });
      }
    }
    if (logs.length > 50_000) logs.splice(0, 10_000);
  });
  proc.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  const s: Spawned = {
    proc,
    node,
    logs,
    stderr: () => err,
    exited,
    status: () => call<StatusResult>(node.control, "status"),
    list: () => call<ListEntry[]>(node.control, "list"),
    call: <T>(cmd: string) => call<T>(node.control, cmd),
  };
  await waitUntil(
    async () => {
      if (dead) throw new Error(`wackamole-node exited during startup:\n${err}`);
      return (await s.status()).id;
    },
    (id) => id === node.id,
    `wackamole-node ${node.id} control socket`,
    timeoutMs,
  ).catch((e) => {
    if (dead) throw new Error(`wackamole-node ${node.id} exited during startup:\n${err}`);
    throw e;
  });
  return s;
}

/** Stops every still-running daemon (SIGKILL) — test cleanup only. */
export async function killAll(ds: readonly Spawned[]): Promise<void> {
  for (const d of ds) if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill("SIGKILL");
  await Promise.all(ds.map((d) => d.exited));
}

/**
 * A test file's scratch folder and the daemons it spawns (push them here): after the file's tests,
 * every daemon still running is SIGKILLed and the folder is removed. Call at the file's top level.
 */
export function scratchCluster(): { readonly dir: string; readonly daemons: Spawned[] } {
  const dir = tmp();
  const daemons: Spawned[] = [];
  afterAll(async () => {
    await killAll(daemons);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, daemons };
}

/** True when every group has exactly one owner among `live`, they agree on it, and it holds it. */
export function coveredOnce(statuses: readonly StatusResult[], groupNames: readonly string[]): boolean {
  for (const g of groupNames) {
    const holders = statuses.filter((s) => s.held.includes(g));
    if (holders.length !== 1) return false;
    const owner = holders[0]?.id;
    if (!statuses.every((s) => s.owners[g] === owner)) return false;
  }
  return true;
}
