/**
 * What every tool shares: exit codes, usage errors, output, node ids and the daemon address flags.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { DaemonTarget } from "@spines-ts/client";

/** Exit codes scripts can rely on. */
export const Exit = { Ok: 0, Failure: 1, Usage: 2 } as const;

/** A bad flag or argument: the tool prints it with a hint to `--help` and exits 2. */
export class UsageError extends Error {
  readonly code = "ERR_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Where a tool writes, and how it is stopped (tests pass their own). */
export interface Io {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  /** Live progress is drawn only on a terminal. */
  readonly isTTY: boolean;
  /** Aborted by SIGINT/SIGTERM in the bins: the tool stops and prints its summary. */
  readonly signal: AbortSignal;
  readonly env: Record<string, string | undefined>;
}

/** The process's Io: stdout/stderr, SIGINT and SIGTERM abort the signal. */
export function processIo(): Io {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: process.stderr.isTTY === true,
    signal: ac.signal,
    env: process.env,
  };
}

export type Options = Parameters<typeof parseArgs>[0] extends infer C
  ? C extends { options?: infer O }
    ? NonNullable<O>
    : never
  : never;

/** `parseArgs` in strict mode; its errors become UsageErrors. */
export function parse<O extends Options>(
  argv: readonly string[],
  options: O,
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}

/** A node or group id: 1..4294967294, or a dotted IPv4 address (as Spines names nodes). */
export function parseId(s: string | undefined, what = "node"): number {
  if (s === undefined) throw new UsageError(`missing ${what}`);
  let n: number;
  const quad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (quad) {
    const b = quad.slice(1).map(Number);
    if (b.some((x) => x > 255)) throw new UsageError(`${what} ${s}: not an IPv4 address`);
    n =
      (((b[0] as number) << 24) >>> 0) +
      ((b[1] as number) << 16) +
      ((b[2] as number) << 8) +
      (b[3] as number);
  } else if (/^\d+$/.test(s)) n = Number(s);
  else throw new UsageError(`${what} must be a number or a dotted IPv4 address, got ${JSON.stringify(s)}`);
  if (n < 1 || n > 0xfffffffe) throw new UsageError(`${what} ${s} is outside 1..4294967294`);
  return n;
}

/** A number flag within [min, max] (integers only when `int`). */
export function parseNumber(
  s: unknown,
  flag: string,
  opts: { min?: number; max?: number; int?: boolean } = {},
): number {
  const n = typeof s === "string" && s.trim() !== "" ? Number(s) : Number.NaN;
  const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, int = false } = opts;
  if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
    const range = `${Number.isFinite(min) ? min : ""}..${Number.isFinite(max) ? max : ""}`;
    throw new UsageError(
      `--${flag} must be ${int ? "an integer" : "a number"} in ${range}, got ${JSON.stringify(s)}`,
    );
  }
  return n;
}

export function parsePort(s: unknown, flag = "port", allowZero = false): number {
  return parseNumber(s, flag, { min: allowZero ? 0 : 1, max: 65535, int: true });
}

/** `--link`: best-effort|reliable|realtime or 0|1|2 (the wire's LinkType numbering). */
export function parseLink(s: unknown): 0 | 1 | 2 {
  switch (s) {
    case "0":
    case "best-effort":
    case "udp":
      return 0;
    case "1":
    case "reliable":
      return 1;
    case "2":
    case "realtime":
    case "real-time":
      return 2;
    default:
      throw new UsageError(
        `--link must be best-effort, reliable or realtime (0, 1, 2), got ${JSON.stringify(s)}`,
      );
  }
}

export const LINK_NAMES = ["best-effort", "reliable", "realtime"] as const;

/** `--daemon PATH` or `--daemon HOST:PORT`; else $SPINES_NODE_SOCKET, else the default socket. */
export function daemonTarget(flag: unknown, env: Io["env"]): DaemonTarget {
  const v = typeof flag === "string" ? flag : env.SPINES_NODE_SOCKET;
  if (v === undefined || v === "") return { path: join(env.TMPDIR ?? tmpdir(), "spines-node-8100.sock") };
  const m = /^(\[[^\]]+\]|[^/:]+):(\d+)$/.exec(v);
  if (m && !v.includes("/")) {
    return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port: parsePort(m[2], "daemon") };
  }
  return { path: v };
}

export const DAEMON_HELP = `      --daemon PATH|HOST:PORT
                         the daemon's client socket (default: $SPINES_NODE_SOCKET,
                         else $TMPDIR/spines-node-8100.sock)`;

/** Runs a tool body with the shared error handling: usage errors exit 2, others 1. */
export async function run(name: string, io: Io, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`${name}: ${e.message}\nTry '${name} --help' for more information.\n`);
      return Exit.Usage;
    }
    const code = (e as { code?: string }).code;
    io.stderr.write(`${name}: ${code ? `${code}: ` : ""}${(e as Error).message}\n`);
    return Exit.Failure;
  }
}

/** A table of rows under `cols` headers, columns padded to fit. */
export function table(cols: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cell = (v: unknown) =>
    v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v);
  const cells = rows.map((r) => r.map(cell));
  const w = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r
      .map((x, i) => (i === r.length - 1 ? x : x.padEnd(w[i] as number)))
      .join("  ")
      .trimEnd();
  return `${[line(cols), ...cells.map(line)].join("\n")}\n`;
}

/** Milliseconds with a sensible precision. */
export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "-";
  return v < 10 ? v.toFixed(3) : v < 100 ? v.toFixed(2) : v.toFixed(1);
}

/** Sleeps `delay` ms, or less if `signal` aborts. */
export function sleep(delay: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, delay);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one host. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
