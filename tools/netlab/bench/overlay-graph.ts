/**
 * Runs one spines-node daemon per host of a netlab testbed, neighbours along the testbed's emulated
 * links (any graph, not only a line), with the daemons' default configuration unless one is given.
 * Used by the fairness and reroute benchmarks; the latency benchmark has its own line launcher.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SpinesClient } from "@spines-ts/spines-node/client";
import { stateDir, type Testbed } from "../src/index.ts";

export interface OverlayGraph {
  /** Daemon process per host (same order as `hosts`); node id = index + 1. */
  procs: ChildProcess[];
  /** Client socket path of the daemon with node id `id`. */
  sock: (id: number) => string;
  /** Collected stderr of every daemon (bounded). */
  stderr: () => string;
  /** SIGTERM, then SIGKILL after 300 ms, every daemon still running. */
  stop: () => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function daemonMain(): string {
  return fileURLToPath(new URL("./main.ts", import.meta.resolve("@spines-ts/spines-node")));
}

/**
 * Starts the daemons and waits (up to `timeoutMs`) until every client socket exists and node 1 has
 * a route to every other node.
 */
export async function startOverlay(
  tb: Testbed,
  o: {
    hosts: string[];
    /** Emulated links as [hostA, hostB, netName]. */
    links: [string, string, string][];
    port?: number;
    config?: unknown;
    tag?: string;
    timeoutMs?: number;
  },
): Promise<OverlayGraph> {
  const port = o.port ?? 8100;
  const dir = stateDir(tb.prefix);
  const tag = o.tag ?? "g";
  const cfg = join(dir, `spines-${tag}.json`);
  writeFileSync(cfg, JSON.stringify(o.config ?? {}));
  const id = (h: string) => o.hosts.indexOf(h) + 1;
  const sock = (n: number) => join(dir, `${tag}${n}.sock`);
  const procs: ChildProcess[] = [];
  let err = "";
  const main = daemonMain();
  for (const h of o.hosts) {
    const n = id(h);
    const args = [
      process.execPath,
      "--import",
      import.meta.resolve("tsx"),
      main,
      "--id",
      String(n),
      "--listen",
      `0.0.0.0:${port}`,
      "--control",
      join(dir, `${tag}${n}.ctl`),
      "--client-socket",
      sock(n),
      "--log-level",
      "error",
      "--config",
      cfg,
    ];
    for (const [a, b, net] of o.links) {
      if (a !== h && b !== h) continue;
      const other = a === h ? b : a;
      args.push("--neighbor", `${id(other)}@${tb.hostAddress(other, net)}:${port}`);
    }
    const p = tb.spawn(h, args, { stdio: ["ignore", "ignore", "pipe"] });
    p.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (err.length < 100_000) err += `[${h}] ${d}`;
    });
    procs.push(p);
  }
  const stop = async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) tb.kill(p, "SIGTERM");
    await sleep(300);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) tb.kill(p);
  };
  const t0 = performance.now();
  try {
    for (;;) {
      if (performance.now() - t0 > (o.timeoutMs ?? 120_000))
        throw new Error(`spines-node daemons did not come up:\n${err.slice(-2000)}`);
      if (procs.some((p) => p.exitCode !== null))
        throw new Error(`a spines-node exited:\n${err.slice(-2000)}`);
      if (o.hosts.every((h) => existsSync(sock(id(h))))) {
        try {
          const c = await SpinesClient.connect({ path: sock(1) });
          c.on("error", () => {});
          try {
            let all = true;
            for (let n = 2; n <= o.hosts.length; n++) {
              const r = await c.route(n).catch(() => undefined);
              if (r === undefined || r.path.length < 2) all = false;
            }
            if (all) break;
          } finally {
            c.close();
          }
        } catch {
          // not yet
        }
      }
      await sleep(200);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { procs, sock, stderr: () => err, stop };
}
