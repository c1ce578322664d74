/**
 * Runs the daemon's commands (`ip`, `arping`, `na6`, track checks, hooks) from a worker thread.
 *
 * Starting a process blocks the calling thread until the child has exec'd: libuv forks, then waits
 * on a pipe for the exec. On a busy host that wait is a scheduling delay — 20–50 ms per command
 * measured at load 15 on 2 cores — and a fail-over starts dozens of commands in a burst (a VIP is
 * raised, then announced in rounds). Run from the main thread, such a burst stalled the event loop
 * for 0.3–1.5 s, longer than the membership failure timeout (350 ms in the default profile), and the
 * other members excluded a healthy node. From a worker the main loop only waits for a message; the
 * same burst delayed its timers by 12–19 ms in the same conditions.
 *
 * Bounded: at most `maxPending` commands in flight (more are refused with code 127); a worker that
 * dies is replaced and the commands it held fail.
 */
import { Worker } from "node:worker_threads";
import type { CommandResult, CommandRunner } from "@spines-ts/vip/linux";
import type { CommandOutcome } from "./run-command.ts";

/** The worker: plain JavaScript (no loader needed), one message per command. */
const WORKER_JS = `
const { parentPort } = require("node:worker_threads");
const { execFile, spawn } = require("node:child_process");
const MAX_STDERR = 512;
parentPort.on("message", (m) => {
  const reply = (r) => parentPort.postMessage({ id: m.id, ...r });
  if (m.kind === "exec") {
    const [cmd, ...args] = m.argv;
    try {
      execFile(cmd, args, { timeout: m.timeoutMs, maxBuffer: m.maxBuffer }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : 127;
        reply({ code, stdout: String(stdout), stderr: String(stderr || (err && err.code !== undefined ? err.message : "")) });
      });
    } catch (e) {
      reply({ code: 127, stdout: "", stderr: String(e) });
    }
    return;
  }
  // shell: its own process group, killed whole when it runs over
  let stderr = "", timedOut = false, done = false, child;
  const finish = (o) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    reply({ ...o, timedOut, stderr: stderr.slice(-MAX_STDERR) });
  };
  try {
    child = spawn("/bin/sh", ["-c", m.command], { detached: true, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...m.env } });
  } catch (e) {
    reply({ code: null, signal: null, timedOut: false, error: String(e), stderr: "" });
    return;
  }
  const timer = setTimeout(() => {
    timedOut = true;
    try { process.kill(-child.pid, "SIGKILL"); } catch { try { child.kill("SIGKILL"); } catch {} }
  }, m.timeoutMs);
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-MAX_STDERR); });
  child.on("error", (e) => finish({ code: null, signal: null, error: e.message }));
  child.on("close", (code, signal) => finish({ code, signal }));
});
`;

interface Pending {
  readonly resolve: (r: never) => void;
  readonly fail: () => unknown;
}

export interface CommandWorkerStats {
  commands: number;
  refused: number;
  workerRestarts: number;
}

export class CommandWorker {
  readonly maxPending: number;
  readonly stats: CommandWorkerStats = { commands: 0, refused: 0, workerRestarts: 0 };
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #closed = false;

  constructor(maxPending = 512) {
    this.maxPending = maxPending;
  }

  /**
   * Starts the worker thread now (a thread and its first command take tens of ms, hundreds on a busy
   * host: not something a fail-over should wait for).
   */
  warm(): void {
    if (!this.#closed) this.#ensure();
  }

  /** Commands in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Runs argv (no shell), like `execFile`; never rejects: a failure is a non-zero code. */
  exec(argv: readonly string[], timeoutMs = 10_000, maxBuffer = 4 << 20): Promise<CommandResult> {
    return this.#send({ kind: "exec", argv: [...argv], timeoutMs, maxBuffer }, () => ({
      code: 127,
      stdout: "",
      stderr: "command worker unavailable",
    }));
  }

  /** A {@link CommandRunner} for the Linux address driver. */
  readonly runner: CommandRunner = (argv) => this.exec(argv);

  /** Runs a shell command in its own process group (killed whole after `timeoutMs`). */
  shell(command: string, timeoutMs: number, env: Record<string, string> = {}): Promise<CommandOutcome> {
    return this.#send({ kind: "shell", command, timeoutMs, env }, () => ({
      code: null,
      signal: null,
      timedOut: false,
      error: "command worker unavailable",
      stderr: "",
    }));
  }

  /** Stops the worker; commands still in flight fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = undefined;
    this.#failAll();
    if (w !== undefined) await w.terminate();
  }

  /** For tests: ends the worker thread as a crash would (the next command starts a new one). */
  async crashForTest(): Promise<void> {
    const w = this.#worker;
    if (w === undefined) return;
    const exited = new Promise((r) => w.once("exit", r));
    await w.terminate();
    await exited;
  }

  #send<T>(msg: Record<string, unknown>, failed: () => T): Promise<T> {
    if (this.#closed || this.#pending.size >= this.maxPending) {
      this.stats.refused++;
      return Promise.resolve(failed());
    }
    const w = this.#ensure();
    const id = this.#nextId++;
    this.stats.commands++;
    return new Promise<T>((resolve) => {
      this.#pending.set(id, { resolve: resolve as (r: never) => void, fail: () => resolve(failed()) });
      w.postMessage({ ...msg, id });
    });
  }

  #ensure(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const w = new Worker(WORKER_JS, { eval: true });
    w.unref();
    w.on("message", (m: { id: number }) => {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      const { id: _id, ...result } = m;
      p.resolve(result as never);
    });
    const gone = () => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      this.stats.workerRestarts++;
      this.#failAll();
    };
    w.on("error", gone);
    w.on("exit", gone);
    this.#worker = w;
    return w;
  }

  #failAll(): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) p.fail();
  }
}

/**
 * Raising or lowering an address (`ip addr add|del`, `sysctl`) is what a fail-over waits for;
 * announcements (`arping`, `na6`, `ndisc6`), queries, track checks and hooks can wait. They run on
 * two workers, so a burst of announcements for the first groups taken over does not queue the
 * `ip addr add` of the next ones behind it.
 */
export function isUrgent(argv: readonly string[]): boolean {
  const [cmd] = argv;
  if (cmd === "sysctl") return true;
  return cmd === "ip" && argv.includes("addr") && (argv.includes("add") || argv.includes("del"));
}

/**
 * The daemon's command workers: `urgent` ones for address changes, `background` ones for the rest.
 * Each start blocks its worker for the fork-to-exec wait, so two of each let two starts proceed at
 * once (one per core on a small machine); a command goes to the one with the fewest in flight.
 */
export class CommandPool {
  readonly urgent: readonly CommandWorker[];
  readonly background: readonly CommandWorker[];

  constructor(opts: { urgent?: number; background?: number; maxPending?: number } = {}) {
    const make = (n: number) => Array.from({ length: n }, () => new CommandWorker(opts.maxPending ?? 256));
    this.urgent = make(opts.urgent ?? 2);
    this.background = make(opts.background ?? 2);
    for (const w of [...this.urgent, ...this.background]) w.warm();
  }

  /** A {@link CommandRunner} for the Linux address driver (routes by {@link isUrgent}). */
  readonly runner: CommandRunner = (argv) => least(isUrgent(argv) ? this.urgent : this.background).exec(argv);

  shell(command: string, timeoutMs: number, env: Record<string, string> = {}): Promise<CommandOutcome> {
    return least(this.background).shell(command, timeoutMs, env);
  }

  get stats(): CommandWorkerStats {
    const out: CommandWorkerStats = { commands: 0, refused: 0, workerRestarts: 0 };
    for (const w of [...this.urgent, ...this.background]) {
      out.commands += w.stats.commands;
      out.refused += w.stats.refused;
      out.workerRestarts += w.stats.workerRestarts;
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.urgent, ...this.background].map((w) => w.close()));
  }
}

function least(ws: readonly CommandWorker[]): CommandWorker {
  let best = ws[0] as CommandWorker;
  for (const w of ws) if (w.pending < best.pending) best = w;
  return best;
}
