/**
 * An `ip -force -batch` that is already running when a fail-over needs it.
 *
 * A fail-over's address changes are one `ip -batch` (docs/wackamole-node.md §1.1). Started from the
 * command shell when they are asked for, the fork and exec of `ip` cost 10–40 ms at load 2–6 in the
 * fail-over lab, and learning the result through the shell (its job report, then the output files)
 * cost up to 60 ms more. So the shell keeps one spare `ip -force -batch F 2>E` started, F and E two
 * FIFOs of the shell's private directory: `ip` has exec'd and waits in open() for a writer of F, and
 * the daemon holds E open for reading. A batch of at most one pipe buffer (4,096 bytes: one atomic
 * write, so `ip` never reads a partial line) is written to F followed by a marker line that fails
 * at once without side effects (an unknown object), and F is closed. `ip` runs the lines; its
 * errors, each followed by `Command failed F:<line>`, arrive on E, and the marker's failure says the
 * batch is done — the moment `ip` has run the last line, without waiting for its exit or the shell.
 * Then the next spare starts. Each batch gets a fresh process, so nothing is cached across
 * fail-overs (a recreated interface gets its new index). When no spare is waiting (just used,
 * still starting) or a batch is larger, the caller starts `ip` from the shell as before.
 */
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import { join } from "node:path";
import type { CommandResult } from "@spines-ts/vip/linux";
import type { CommandShell } from "./command-shell.ts";

/** The largest batch written at once (PIPE_BUF: the write is atomic). */
export const SPARE_MAX_BYTES = 4096;
/** The last line of every batch: fails at once, changes nothing. */
export const DONE_MARKER = "wackamole-done";
/** How long after a batch is done the next spare starts (see `#startLater`). */
const NEXT_SPARE_DELAY_MS = 20;
/** A batch whose marker has not come back by then is failed (124). */
const BATCH_TIMEOUT_MS = 10_000;

interface Spare {
  readonly fifo: string;
  readonly errFifo: string;
  /** The shell job running `ip` (ends when `ip` exits). */
  readonly job: Promise<CommandResult>;
  /** E, open for reading (and writing, so it never reads end-of-file before `ip` writes). */
  err: Socket | undefined;
  stderr: string;
  /** Set once a batch was handed to this spare. */
  batch:
    | { lines: number; resolve: (r: CommandResult) => void; timer: ReturnType<typeof setTimeout> }
    | undefined;
  state: "starting" | "waiting" | "used" | "gone";
}

export class IpSpare {
  readonly stats = { used: 0, missed: 0, starts: 0 };
  readonly #shell: CommandShell;
  readonly #ip: string | null;
  #spare: Spare | undefined;
  #n = 0;
  #closed = false;
  #later: ReturnType<typeof setTimeout> | undefined;

  /** `ip`: the command; null: no spare at all (every `run` returns undefined). */
  constructor(shell: CommandShell, ip: string | null = "ip") {
    this.#shell = shell;
    this.#ip = ip;
    this.#start();
  }

  /**
   * Runs `lines` on the waiting `ip` and resolves with its result (stderr names failed lines as
   * `Command failed <fifo>:<n>`), or returns undefined when no spare can take them: run them another way.
   */
  run(lines: readonly string[]): Promise<CommandResult> | undefined {
    const s = this.#spare;
    const text = Buffer.from(`${[...lines, DONE_MARKER].join("\n")}\n`);
    if (s === undefined || s.state !== "waiting" || text.length > SPARE_MAX_BYTES || this.#closed) {
      this.stats.missed++;
      if (s === undefined) this.#start();
      return undefined;
    }
    let fd: number;
    try {
      // succeeds only while `ip` has F open for reading (it waits there for us)
      fd = openSync(s.fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      this.stats.missed++; // `ip` not there yet (still starting) or gone
      return undefined;
    }
    this.#spare = undefined;
    s.state = "used";
    let ok = false;
    try {
      ok = writeSync(fd, text) === text.length; // ≤ PIPE_BUF into an empty pipe: all of it, at once
    } catch {
      // nothing written (an atomic write is all or nothing)
    }
    closeSync(fd);
    if (!ok) {
      this.stats.missed++;
      this.#end(s);
      this.#start();
      return undefined;
    }
    this.stats.used++;
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => this.#finish(s, 124, `ip -batch timed out after ${BATCH_TIMEOUT_MS} ms`),
        BATCH_TIMEOUT_MS,
      );
      timer.unref?.();
      s.batch = { lines: lines.length, resolve, timer };
      this.#scan(s);
    });
  }

  /** Lets a waiting spare end (it reads an empty batch and exits). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#later);
    this.#later = undefined;
    const s = this.#spare;
    this.#spare = undefined;
    if (s === undefined) return;
    try {
      closeSync(openSync(s.fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // not waiting yet: it finds no FIFO once the shell's directory is gone
    }
    this.#end(s);
  }

  #start(): void {
    if (this.#closed || this.#spare !== undefined || this.#ip === null) return;
    const n = ++this.#n;
    const fifo = join(this.#shell.dir, `ip-${n}.fifo`);
    const errFifo = join(this.#shell.dir, `ip-${n}.err`);
    this.stats.starts++;
    // `2>E` waits in open() until the daemon has E open; then `ip` waits in open() for F's writer
    const job = this.#shell.run(
      `rm -f '${fifo}' '${errFifo}' && mkfifo -m 600 '${fifo}' '${errFifo}' && exec ${this.#ip} -force -batch '${fifo}' 2>'${errFifo}'`,
      0,
    );
    const s: Spare = { fifo, errFifo, job, err: undefined, stderr: "", batch: undefined, state: "starting" };
    this.#spare = s;
    void job.then((r) => {
      // `ip` exited: a batch whose marker never came (killed, no `ip`) ends with the job's status
      if (s.batch !== undefined) this.#finish(s, r.code === 0 ? 127 : r.code, `${s.stderr}${r.stderr}`);
      this.#end(s);
      if (this.#spare === s) this.#spare = undefined;
    });
    void this.#openErr(s);
  }

  async #openErr(s: Spare): Promise<void> {
    for (let i = 0; i < 500 && s.state === "starting"; i++) {
      try {
        // read-write: opening never waits, and E never reads end-of-file while we hold it
        const fd = openSync(s.errFifo, constants.O_RDWR | constants.O_NONBLOCK);
        const sock = new Socket({ fd, readable: true, writable: false });
        sock.setEncoding("utf8");
        sock.on("data", (d: string) => {
          s.stderr = (s.stderr + d).slice(-65_536);
          this.#scan(s);
        });
        sock.on("error", () => {});
        sock.unref();
        s.err = sock;
        s.state = "waiting";
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    if (s.state === "starting") {
      this.#end(s);
      if (this.#spare === s) this.#spare = undefined;
    }
  }

  /** Resolves the batch once the marker's failure (the line after the batch) has arrived. */
  #scan(s: Spare): void {
    const b = s.batch;
    if (b === undefined) return;
    const done = new RegExp(`^Command failed \\S*:${b.lines + 1}\\s*$`, "m");
    if (!done.test(s.stderr)) return;
    // drop the marker's own error (the line before "Command failed ...:N+1") and that line
    const ls = s.stderr.split("\n");
    const at = ls.findIndex((l) => done.test(l));
    const text = [...ls.slice(0, Math.max(0, at - 1))].join("\n");
    this.#finish(s, text.includes("Command failed") ? 1 : 0, text === "" ? "" : `${text}\n`);
  }

  #finish(s: Spare, code: number, stderr: string): void {
    const b = s.batch;
    if (b === undefined) return;
    s.batch = undefined;
    clearTimeout(b.timer);
    b.resolve({ code, stdout: "", stderr });
    this.#end(s);
    this.#startLater();
  }

  /**
   * The next spare starts once the batch is done and its announcements are out, not while `ip`
   * runs it: starting one is a fork of the shell and two execs (`mkfifo`, `ip`), which on a
   * busy host compete with this batch's `ip`, the frame senders and the clients for the cores.
   */
  #startLater(): void {
    if (this.#closed || this.#spare !== undefined || this.#later !== undefined) return;
    this.#later = setTimeout(() => {
      this.#later = undefined;
      this.#start();
    }, NEXT_SPARE_DELAY_MS);
    this.#later.unref?.();
  }

  #end(s: Spare): void {
    if (s.state === "gone") return;
    const wasStarting = s.state === "starting";
    s.state = "gone";
    s.err?.destroy();
    s.err = undefined;
    if (wasStarting) {
      // a shell waiting in open() of E for a reader: let it through (ip then finds F, or waits
      // there until close() or the directory goes)
      try {
        closeSync(openSync(s.errFifo, constants.O_RDONLY | constants.O_NONBLOCK));
      } catch {
        // no FIFO
      }
    }
  }
}
