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
import {
  type Announcement,
  announcementArgv,
  type CommandOptions,
  type CommandResult,
  type CommandRunner,
  parseAnnouncement,
  SKIPPED,
} from "@spines-ts/vip/linux";
import { CommandShell } from "./command-shell.ts";
import { type FrameSenderStats, FrameSenders, findOnPath } from "./frame-sender.ts";
import { IpSpare } from "./ip-spare.ts";
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
      const child = execFile(cmd, args, { timeout: m.timeoutMs, maxBuffer: m.maxBuffer }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : 127;
        reply({ code, stdout: String(stdout), stderr: String(stderr || (err && err.code !== undefined ? err.message : "")) });
      });
      if (child.stdin) {
        child.stdin.on("error", () => {});
        child.stdin.end(typeof m.input === "string" ? m.input : undefined);
      }
      parentPort.postMessage({ id: m.id, started: true });
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
    parentPort.postMessage({ id: m.id, started: true });
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

interface Queued {
  readonly id: number;
  readonly msg: Record<string, unknown>;
  /** Asked when its turn comes; the command runs if any says yes (or there is none). */
  readonly wanted: (() => boolean)[] | undefined;
  readonly skip: () => unknown;
  /** Set for `exec`: the same argv asked again while this one waits joins it. */
  readonly key?: string;
  readonly joined: ((r: CommandResult) => void)[];
}

export interface CommandWorkerStats {
  commands: number;
  refused: number;
  /** Not started: no longer wanted when their turn came (an announcement of a VIP released meanwhile). */
  skipped: number;
  /** Asked again while the same command waited: answered by that one run. */
  joined: number;
  workerRestarts: number;
}

export class CommandWorker {
  readonly maxPending: number;
  readonly stats: CommandWorkerStats = { commands: 0, refused: 0, skipped: 0, joined: 0, workerRestarts: 0 };
  #worker: Worker | undefined;
  #nextId = 1;
  /** Started (or being started) commands, by id. */
  readonly #pending = new Map<number, Pending>();
  /**
   * Commands not handed to the worker yet. The worker gets one start at a time (it acks the start),
   * so a command waits here — where `stillWanted` can still cancel it — and not in the thread's
   * message queue, where nothing can.
   */
  readonly #queue: Queued[] = [];
  /** Queued (not started) `exec` commands by argv: a repeat joins the waiting one. */
  readonly #queuedByKey = new Map<string, Queued>();
  /** Id of the command the worker is starting now (0: none). */
  #starting = 0;
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

  /** Commands queued or in flight. */
  get pending(): number {
    return this.#pending.size + this.#queue.length;
  }

  /** Runs argv (no shell), like `execFile`; never rejects: a failure is a non-zero code. */
  exec(
    argv: readonly string[],
    options: CommandOptions & { timeoutMs?: number; maxBuffer?: number; input?: string } = {},
  ): Promise<CommandResult> {
    // The same command already waiting (an announcement round issued again before the last one
    // started, on a busy host): one run answers both, so the queue holds each command once and
    // cannot grow with every view change.
    const key = options.input === undefined ? argv.join("\0") : `${argv.join("\0")}\0${options.input}`;
    const waiting = this.#queuedByKey.get(key);
    if (waiting !== undefined) {
      this.stats.joined++;
      if (waiting.wanted !== undefined) {
        if (options.stillWanted === undefined) (waiting as { wanted: unknown }).wanted = undefined;
        else waiting.wanted.push(options.stillWanted);
      }
      return new Promise((resolve) => waiting.joined.push(resolve));
    }
    return this.#send(
      {
        kind: "exec",
        argv: [...argv],
        timeoutMs: options.timeoutMs ?? 10_000,
        maxBuffer: options.maxBuffer ?? 4 << 20,
        ...(options.input !== undefined ? { input: options.input } : {}),
      },
      () => ({ code: 127, stdout: "", stderr: "command worker unavailable" }),
      options.stillWanted,
      () => SKIPPED,
      key,
    );
  }

  /** A {@link CommandRunner} for the Linux address driver. */
  readonly runner: CommandRunner = (argv, options) => this.exec(argv, options ?? {});

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

  #send<T>(
    msg: Record<string, unknown>,
    failed: () => T,
    stillWanted?: () => boolean,
    skipped?: () => T,
    key?: string,
  ): Promise<T> {
    if (this.#closed || this.pending >= this.maxPending) {
      this.stats.refused++;
      return Promise.resolve(failed());
    }
    this.#ensure();
    const id = this.#nextId++;
    this.stats.commands++;
    return new Promise<T>((resolve) => {
      const joined: ((r: CommandResult) => void)[] = [];
      const all = (r: T) => {
        resolve(r);
        for (const j of joined) j(r as CommandResult);
      };
      this.#pending.set(id, { resolve: all as (r: never) => void, fail: () => all(failed()) });
      const q: Queued = {
        id,
        msg,
        wanted: stillWanted !== undefined ? [stillWanted] : undefined,
        skip: () => all((skipped ?? failed)()),
        ...(key !== undefined ? { key } : {}),
        joined,
      };
      this.#queue.push(q);
      if (key !== undefined) this.#queuedByKey.set(key, q);
      this.#pump();
    });
  }

  /** Hands the next wanted command to the worker when it is not starting one. */
  #pump(): void {
    while (this.#starting === 0 && this.#queue.length > 0) {
      const q = this.#queue.shift() as Queued;
      if (q.key !== undefined) this.#queuedByKey.delete(q.key);
      if (q.wanted !== undefined && !q.wanted.some((f) => f())) {
        this.#pending.delete(q.id);
        this.stats.skipped++;
        q.skip();
        continue;
      }
      const w = this.#ensure();
      this.#starting = q.id;
      w.postMessage({ ...q.msg, id: q.id });
    }
  }

  #ensure(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const w = new Worker(WORKER_JS, { eval: true });
    w.unref();
    w.on("message", (m: { id: number; started?: true }) => {
      if (m.id === this.#starting) {
        this.#starting = 0;
        queueMicrotask(() => this.#pump());
      }
      if (m.started === true) return;
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
    this.#queue.length = 0;
    this.#queuedByKey.clear();
    this.#starting = 0;
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

/** `ip [-4|-6] addr add|del ...`: the commands {@link CommandPool} runs together in one `ip -batch`. */
export function isAddressChange(argv: readonly string[]): boolean {
  const rest = argv[1] === "-4" || argv[1] === "-6" ? argv.slice(2) : argv.slice(1);
  return argv[0] === "ip" && rest[0] === "addr" && (rest[1] === "add" || rest[1] === "del");
}

/** Announcements and notifications: fire-and-forget packets whose output nobody reads. */
export function isAnnouncement(argv: readonly string[]): boolean {
  const [cmd] = argv;
  return cmd === "arping" || cmd === "na6" || cmd === "ndisc6";
}

/** A POSIX shell word for `a` (single-quoted). */
export function shellQuote(a: string): string {
  return `'${a.replace(/'/g, "'\\''")}'`;
}

/**
 * Splits the stderr of `ip -force -batch FILE` among its `n` lines: each failed line is followed by
 * `Command failed FILE:<line>`, the error text before it belongs to that line. `code` is the exit
 * status of the whole run (non-zero with no line named: every line failed, e.g. `ip` is missing).
 */
export function splitIpBatch(n: number, r: CommandResult): CommandResult[] {
  const out: CommandResult[] = Array.from({ length: n }, () => ({ code: 0, stdout: "", stderr: "" }));
  let buf: string[] = [];
  let named = 0;
  for (const line of r.stderr.split("\n")) {
    const m = /^Command failed \S*:(\d+)\s*$/.exec(line);
    if (m === null) {
      if (line.length > 0) buf.push(line);
      continue;
    }
    const i = Number(m[1]) - 1;
    if (i >= 0 && i < n) {
      out[i] = { code: 2, stdout: "", stderr: buf.join("\n") };
      named++;
    }
    buf = [];
  }
  if (r.code !== 0 && named === 0)
    return out.map(() => ({ code: r.code === 1 ? 2 : r.code, stdout: "", stderr: r.stderr }));
  return out;
}

interface Batched {
  readonly argv: readonly string[];
  readonly options: CommandOptions | undefined;
  readonly resolve: (r: CommandResult) => void;
  /** When it was asked for (performance.now()). */
  readonly at: number;
}

/**
 * The result of an address change run in a batch, with where its time went: `waitMs` from the
 * request to the batch's write (the event-loop turn that gathers a batch), `runMs` from the write
 * to the daemon's reading of the batch's end (`ip` running it, and this thread noticing).
 */
export interface BatchedResult extends CommandResult {
  readonly waitMs?: number;
  readonly runMs?: number;
  /** The batch ran on the waiting spare `ip`. */
  readonly spare?: boolean;
}

/**
 * The daemon's command workers: `urgent` ones for address changes, `background` ones for the rest.
 * Each start blocks its worker for the fork-to-exec wait, so two of each let two starts proceed at
 * once (one per core on a small machine); a command goes to the one with the fewest in flight.
 *
 * A fail-over asks for many commands at once (an `ip addr add` per address of every group taken
 * over, then two `arping`s per IPv4 address). Starting a process from the daemon costs 5 ms on an
 * idle machine and 50–150 ms on a busy one (the fork of a large process, then the wait for its exec),
 * and those starts queued behind each other were most of a fail-over's time. So the commands asked
 * for in one turn of the event loop go out together: address changes as one `ip -force -batch -`
 * (results per line), announcements side by side with each exit status reported; both are started
 * by a {@link CommandShell} that runs all along (a small shell forks and execs in a fraction of the
 * time the daemon takes to).
 */
export class CommandPool {
  readonly urgent: readonly CommandWorker[];
  readonly background: readonly CommandWorker[];
  /** Batches run (address changes, announcements) and the commands they carried. */
  readonly batchStats = {
    ipBatches: 0,
    ipCommands: 0,
    followUps: 0,
    announceBatches: 0,
    announceCommands: 0,
    /** Address batches run by the spare `ip` (the others started `ip` from the shell). */
    spareBatches: 0,
    /** Announcements (later rounds, refreshes) sent as frames instead of commands. */
    announceFrames: 0,
  };
  #ip: Batched[] = [];
  #announce: Batched[] = [];
  #flushAt: ReturnType<typeof setImmediate> | undefined;
  readonly #shell: CommandShell;
  readonly #frames: FrameSenders;
  readonly #spare: IpSpare;

  /**
   * `socat: false`: never send frames (every announcement is a command); `spare: false`: no spare
   * `ip` (every batch starts one).
   */
  constructor(
    opts: { urgent?: number; background?: number; maxPending?: number; socat?: false; spare?: false } = {},
  ) {
    this.#shell = new CommandShell();
    this.#spare = new IpSpare(this.#shell, opts.spare === false ? null : "ip");
    this.#frames = new FrameSenders(this.#shell, opts.socat === false ? null : (findOnPath("socat") ?? null));
    const make = (n: number) => Array.from({ length: n }, () => new CommandWorker(opts.maxPending ?? 256));
    this.urgent = make(opts.urgent ?? 2);
    this.background = make(opts.background ?? 2);
    for (const w of [...this.urgent, ...this.background]) w.warm();
  }

  /**
   * A {@link CommandRunner} for the Linux address driver (routes by {@link isUrgent}; batches). It
   * starts `followUps` (an address's first announcement) from the same shell job as the address
   * change, right after the `ip -batch`.
   */
  readonly runner: CommandRunner = Object.assign(
    (argv: readonly string[], options?: CommandOptions): Promise<CommandResult> => {
      const batch = isAddressChange(argv) ? this.#ip : isAnnouncement(argv) ? this.#announce : undefined;
      if (batch === undefined)
        return least(isUrgent(argv) ? this.urgent : this.background).exec(argv, options ?? {});
      return new Promise<CommandResult>((resolve) => {
        batch.push({ argv, options, resolve, at: performance.now() });
        this.#flushAt ??= setImmediate(() => this.#flush());
      });
    },
    { followUps: true },
  );

  #flush(): void {
    this.#flushAt = undefined;
    const ip = this.#ip;
    const ann = this.#announce;
    this.#ip = [];
    this.#announce = [];
    if (ip.length > 0) this.#runIp(ip);
    if (ann.length > 0) this.#runAnnouncements(ann);
  }

  #runIp(items: Batched[]): void {
    this.batchStats.ipBatches++;
    this.batchStats.ipCommands += items.length;
    // `ip -batch` lines take no global options; the family follows from the address
    const lines = items.map((b) => {
      const rest = b.argv[1] === "-4" || b.argv[1] === "-6" ? b.argv.slice(2) : b.argv.slice(1);
      return rest.join(" ");
    });
    // follow-ups start as soon as the batch has run, in the background (arping lingers ~1 s)
    // the first follow-up of every command, then the second, ...: every address's first
    // announcement starts before any address's second form
    const follow: (readonly string[])[] = [];
    const lists = items.map((b) => b.options?.followUps ?? []);
    for (let k = 0; lists.some((l) => k < l.length); k++)
      for (const l of lists) if (k < l.length) follow.push(l[k] as readonly string[]);
    this.batchStats.followUps += follow.length;
    // announcements a running frame sender can send go out from here the moment the batch is
    // done; the others start from the same shell job, right after the batch
    const frames: Announcement[] = [];
    const commands: (readonly string[])[] = [];
    for (const f of follow) {
      const a = parseAnnouncement(f);
      if (a !== undefined && this.#frames.ready(a)) frames.push(a);
      else commands.push(f);
    }
    const wroteAt = performance.now();
    let onSpare = false;
    const done = (r: CommandResult) => {
      if (frames.length > 0) this.#sendFrames(frames);
      const rs = splitIpBatch(items.length, r);
      const runMs = Math.round((performance.now() - wroteAt) * 10) / 10;
      for (const [i, b] of items.entries()) {
        const res: BatchedResult = {
          ...(rs[i] as CommandResult),
          waitMs: Math.round((wroteAt - b.at) * 10) / 10,
          runMs,
          spare: onSpare,
        };
        b.resolve(res);
      }
    };
    const spare = this.#spare.run(lines);
    onSpare = spare !== undefined;
    if (spare !== undefined) {
      this.batchStats.spareBatches++;
      void spare.then((r) => {
        if (commands.length > 0) this.#startCommands(commands);
        done(r);
      });
      return;
    }
    const after = commands.map((f) => `${f.map(shellQuote).join(" ")} </dev/null >/dev/null 2>&1 &`);
    const script = [
      `ip -force -batch - <<'WACK_EOF'\n${lines.join("\n")}\nWACK_EOF`,
      ...(after.length > 0 ? ["s=$?", ...after, "exit $s"] : []),
    ].join("\n");
    void this.#shell.run(script).then(done);
  }

  /** Starts commands side by side from the shell; their outcome is not reported. */
  #startCommands(argv: readonly (readonly string[])[]): void {
    void this.#shell.run(
      `${argv.map((f) => `${f.map(shellQuote).join(" ")} </dev/null >/dev/null 2>&1 &`).join("\n")}\nwait`,
    );
  }

  /** Sends announcements as frames; what could not be sent starts as commands (not reported). */
  #sendFrames(list: readonly Announcement[]): void {
    const rest = this.#frames.send(list);
    if (rest.length > 0) this.#startCommands(rest.map((a) => announcementArgv(a)));
  }

  /**
   * Starts the frame senders (docs/wackamole-node.md §1.1) for these interfaces now, so the first
   * fail-over finds them running.
   */
  prepareAnnouncements(ifaces: readonly { iface: string; family: 4 | 6 }[]): void {
    this.#frames.prepare(ifaces);
  }

  /** The frame senders that run ("4:eth0" for ARP on eth0, "6:eth0" for NA). */
  get frameSenders(): string[] {
    return this.#frames.running();
  }

  /** Frame senders' counters (frames sent, announcements that went to a command instead, starts). */
  get frameStats(): FrameSenderStats {
    return { ...this.#frames.stats };
  }

  #runAnnouncements(all: Batched[]): void {
    // one still wanted when the batch forms goes out; the rest are skipped as the worker would
    const items: Batched[] = [];
    const frames: { b: Batched; a: Announcement }[] = [];
    for (const b of all) {
      if (b.options?.stillWanted?.() === false) {
        b.resolve(SKIPPED);
        continue;
      }
      const a = parseAnnouncement(b.argv);
      if (a !== undefined && this.#frames.ready(a)) frames.push({ b, a });
      else items.push(b);
    }
    if (frames.length > 0) {
      const rest = new Set(this.#frames.send(frames.map((f) => f.a)));
      this.batchStats.announceFrames += frames.length - rest.size;
      for (const f of frames) {
        if (rest.has(f.a)) items.push(f.b);
        else f.b.resolve({ code: 0, stdout: "", stderr: "" });
      }
    }
    if (items.length === 0) return;
    this.batchStats.announceBatches++;
    this.batchStats.announceCommands += items.length;
    const script = `${items
      .map((b, i) => `(${b.argv.map(shellQuote).join(" ")} </dev/null >/dev/null 2>&1; echo "${i} $?") &`)
      .join("\n")}\nwait`;
    void this.#shell.run(script).then((r) => {
      const codes = new Map<number, number>();
      for (const line of r.stdout.split("\n")) {
        const m = /^(\d+) (\d+)$/.exec(line);
        if (m !== null) codes.set(Number(m[1]), Number(m[2]));
      }
      items.forEach((b, i) => {
        const code = codes.get(i) ?? (r.code === 0 ? 127 : r.code);
        b.resolve({ code, stdout: "", stderr: code === 0 ? "" : r.stderr });
      });
    });
  }

  shell(command: string, timeoutMs: number, env: Record<string, string> = {}): Promise<CommandOutcome> {
    return least(this.background).shell(command, timeoutMs, env);
  }

  get stats(): CommandWorkerStats {
    const out: CommandWorkerStats = { commands: 0, refused: 0, skipped: 0, joined: 0, workerRestarts: 0 };
    for (const w of [...this.urgent, ...this.background]) {
      out.commands += w.stats.commands;
      out.refused += w.stats.refused;
      out.skipped += w.stats.skipped;
      out.joined += w.stats.joined;
      out.workerRestarts += w.stats.workerRestarts;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#flushAt !== undefined) {
      clearImmediate(this.#flushAt);
      this.#flush();
    }
    this.#frames.close();
    this.#spare.close();
    this.#shell.close();
    await Promise.all([...this.urgent, ...this.background].map((w) => w.close()));
  }
}

function least(ws: readonly CommandWorker[]): CommandWorker {
  let best = ws[0] as CommandWorker;
  for (const w of ws) if (w.pending < best.pending) best = w;
  return best;
}
