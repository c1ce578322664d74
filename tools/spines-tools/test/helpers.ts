import { createSocket } from "node:dgram";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@spines-ts/primitives";
import { ControlClient, parseArgs, resolveConfig, SpinesDaemon } from "@spines-ts/spines-node";
import type { Io } from "../src/cli.ts";

export const tmp = (): string => mkdtempSync(join(tmpdir(), "st-"));

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

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 15_000,
): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Node {
  readonly id: number;
  readonly daemon: SpinesDaemon;
  readonly socket: string;
  readonly control: string;
}

/**
 * Starts one in-process daemon per id on loopback, linked along `edges`, with fast link liveness
 * and optional session settings; resolves once every node has a route to every other.
 */
export async function startOverlay(
  ids: readonly number[],
  edges: readonly (readonly [number, number])[],
  opts: { session?: Record<string, number>; limits?: Record<string, number> } = {},
): Promise<{ nodes: Map<number, Node>; dir: string; stop: () => Promise<void> }> {
  const dir = tmp();
  const ports = await freeUdpPorts(ids.length);
  const portOf = new Map(ids.map((id, i) => [id, ports[i] as number]));
  const nodes = new Map<number, Node>();
  for (const id of ids) {
    const nbs = edges.flatMap(([a, b]) => (a === id ? [b] : b === id ? [a] : []));
    const file = join(dir, `n${id}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        link: { helloIntervalMs: 50, deadTimeoutMs: 400 },
        ...(opts.session ? { session: opts.session } : {}),
        ...(opts.limits ? { limits: opts.limits } : {}),
      }),
    );
    const socket = join(dir, `n${id}.sock`);
    const control = join(dir, `n${id}.ctl`);
    const argv = [
      "--id",
      String(id),
      "--listen",
      `127.0.0.1:${portOf.get(id)}`,
      "--config",
      file,
      "--control",
      control,
      "--client-socket",
      socket,
      "--log-level",
      "silent",
      ...nbs.flatMap((n) => ["--neighbor", `${n}@127.0.0.1:${portOf.get(n)}`]),
    ];
    const config = resolveConfig(parseArgs(argv));
    const daemon = await SpinesDaemon.start({ config, log: silentLogger });
    nodes.set(id, { id, daemon, socket, control });
  }
  const stop = async () => {
    await Promise.all([...nodes.values()].map((n) => n.daemon.stop()));
  };
  try {
    await waitFor(async () => {
      for (const n of nodes.values()) {
        const c = await ControlClient.connect(n.control);
        try {
          const routes = (await c.call("routes")) as { dst: number }[];
          const have = new Set(routes.map((r) => r.dst));
          if (ids.some((x) => x !== n.id && !have.has(x))) return false;
        } finally {
          c.close();
        }
      }
      return true;
    }, "routes between every pair of nodes");
  } catch (e) {
    await stop();
    throw e;
  }
  return { nodes, dir, stop };
}

/** An Io that captures output, for calling a tool's main() in process. */
export function captureIo(env: Record<string, string | undefined> = {}): Io & {
  out: () => string;
  err: () => string;
  abort: () => void;
} {
  let out = "";
  let err = "";
  const ac = new AbortController();
  return {
    stdout: {
      write: (s: string) => {
        out += s;
        return true;
      },
    },
    stderr: {
      write: (s: string) => {
        err += s;
        return true;
      },
    },
    isTTY: false,
    signal: ac.signal,
    env,
    out: () => out,
    err: () => err,
    abort: () => ac.abort(),
  };
}
