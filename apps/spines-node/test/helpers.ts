import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync } from "node:fs";
import { createServer, isIPv6 } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlClient } from "@spines-ts/daemon-kit";
import { silentLogger } from "@spines-ts/primitives";
import { type DaemonConfig, DEFAULT_LIMITS } from "../src/config.ts";
import { SpinesDaemon } from "../src/daemon.ts";

export const tmp = (): string => mkdtempSync(join(tmpdir(), "sn-"));

/** Free UDP ports on `host`, 127.0.0.1 by default (held until all are picked, then released). */
export async function freeUdpPorts(n: number, host = "127.0.0.1"): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createSocket(isIPv6(host) ? "udp6" : "udp4");
      await new Promise<void>((r) => s.bind(0, host, () => r()));
      return s;
    }),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** A free TCP port on 127.0.0.1. */
export async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() - t0 > ms) reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

export async function waitForAsync(cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function inProcessConfig(
  dir: string,
  id: number,
  port: number,
  neighbors: [number, number][] = [],
): DaemonConfig {
  return {
    id,
    listen: { address: "127.0.0.1", port },
    neighbors: neighbors.map(([nid, nport]) => ({
      id: nid,
      endpoint: { address: "127.0.0.1", port: nport },
    })),
    logLevel: "silent",
    control: join(dir, `n${id}.ctl`),
    clientSocket: join(dir, `n${id}.sock`),
    clientTcp: undefined,
    metrics: undefined,
    configFile: undefined,
    limits: DEFAULT_LIMITS,
    link: {},
    session: {},
    metric: "explat",
  };
}

export function startInProcess(cfg: DaemonConfig): Promise<SpinesDaemon> {
  return SpinesDaemon.start({ config: cfg, log: silentLogger });
}

const MAIN = join(import.meta.dirname, "..", "src", "main.ts");

export interface Spawned {
  readonly proc: ChildProcess;
  readonly control: string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ctl(): Promise<ControlClient>;
}

/** Spawns `spines-node` with tsx and resolves once its control socket answers a ping. */
export async function spawnDaemon(args: string[], control: string, timeoutMs = 20_000): Promise<Spawned> {
  const proc = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: join(import.meta.dirname, ".."),
  });
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  proc.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  await waitForAsync(
    async () => {
      if (dead) throw new Error(`spines-node exited during startup:\n${err}`);
      try {
        const c = await ControlClient.connect(control);
        try {
          return (await c.request("ping")).ok;
        } finally {
          c.close();
        }
      } catch {
        return false;
      }
    },
    `spines-node control socket ${control}`,
    timeoutMs,
  );
  return { proc, control, stderr: () => err, exited, ctl: () => ControlClient.connect(control) };
}
