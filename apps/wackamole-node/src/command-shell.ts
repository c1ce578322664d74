/**
 * A long-running `/bin/sh` that starts the fail-over's commands for the daemon.
 *
 * Starting a process from the daemon means a fork of a large, multi-threaded Node process and a
 * wait for the child's exec: 5 ms on an idle machine, 30–150 ms on a busy one (measured in the
 * fail-over lab at load 4–6), and a fail-over waits for two of them in a row (`ip addr add`, then
 * the gratuitous ARP). A small shell that is already running forks in a fraction of that. Each job
 * is a shell snippet written to the shell's stdin; it runs in the background (jobs proceed side by
 * side), its stdout and stderr go to files of a private directory, and the shell reports
 * `<id> <status>` on its stdout when the job ends. A shell that dies is started again for the next
 * job; the jobs it had fail (status 127). Finished jobs are reaped when the next one is written
 * (`jobs`), so at most the jobs that ended since the last one wait as zombies.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CommandResult } from "@spines-ts/vip/linux";

const PREFIX = "wackamole-sh-";

/** Removes the job directories of daemons that are gone (a `kill -9` leaves its directory behind). */
function removeStaleDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const n of names) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(n);
    if (m === null || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // that process runs (or the pid was reused): leave it
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") continue;
    }
    rmSync(join(tmpdir(), n), { recursive: true, force: true });
  }
}

interface Job {
  readonly resolve: (r: CommandResult) => void;
  readonly timer: ReturnType<typeof setTimeout> | undefined;
}

export class CommandShell {
  readonly stats = { jobs: 0, restarts: 0, timeouts: 0 };
  readonly #dir: string;
  #proc: ChildProcess | undefined;
  #buf = "";
  #next = 1;
  readonly #jobs = new Map<number, Job>();
  #closed = false;

  constructor() {
    removeStaleDirs();
    this.#dir = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
    this.#ensure();
  }

  /** The shell's process id (undefined between a shell's exit and the next job). */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** The shell's private directory (job output; other private files of the daemon may go here). */
  get dir(): string {
    return this.#dir;
  }

  /** Runs `script` (shell text) in the background of the shell; never rejects. `timeoutMs` 0: none. */
  run(script: string, timeoutMs = 10_000): Promise<CommandResult> {
    if (this.#closed) return Promise.resolve({ code: 127, stdout: "", stderr: "command shell closed" });
    const p = this.#ensure();
    const id = this.#next++;
    this.stats.jobs++;
    const base = join(this.#dir, String(id));
    return new Promise((resolve) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              // the job may still run; its result no longer matters
              this.stats.timeouts++;
              this.#finish(id, 124, `timed out after ${timeoutMs} ms`);
            }, timeoutMs)
          : undefined;
      timer?.unref?.();
      this.#jobs.set(id, { resolve, timer });
      // `jobs` first: a non-interactive shell that only starts background jobs never waits, so
      // without it every finished job would stay a zombie (and in the shell's job table) for as
      // long as the shell lives; `jobs` reaps and forgets the finished ones (a builtin: no fork)
      p.stdin?.write(
        `jobs >/dev/null\n{ (\n${script}\n) </dev/null >'${base}.out' 2>'${base}.err'; echo "${id} $?"; } &\n`,
      );
    });
  }

  /** Ends the shell (jobs still running go on; their results are dropped). */
  close(): void {
    this.#closed = true;
    const p = this.#proc;
    this.#proc = undefined;
    p?.stdin?.end();
    for (const id of [...this.#jobs.keys()]) this.#finish(id, 127, "command shell closed");
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #ensure(): ChildProcess {
    if (this.#proc !== undefined) return this.#proc;
    const p = spawn("/bin/sh", ["-s"], { stdio: ["pipe", "pipe", "ignore"] });
    p.stdin.on("error", () => {});
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (d: string) => {
      this.#buf += d;
      let i = this.#buf.indexOf("\n");
      while (i >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        const m = /^(\d+) (\d+)$/.exec(line);
        if (m !== null) this.#finish(Number(m[1]), Number(m[2]));
        i = this.#buf.indexOf("\n");
      }
    });
    const gone = () => {
      if (this.#proc !== p) return;
      this.#proc = undefined;
      this.#buf = "";
      if (!this.#closed) this.stats.restarts++;
      for (const id of [...this.#jobs.keys()]) this.#finish(id, 127, "command shell exited");
    };
    p.on("exit", gone);
    p.on("error", gone);
    p.unref();
    (p.stdout as unknown as { unref?: () => void }).unref?.();
    (p.stdin as unknown as { unref?: () => void }).unref?.();
    this.#proc = p;
    return p;
  }

  #finish(id: number, code: number, why?: string): void {
    const j = this.#jobs.get(id);
    if (j === undefined) return;
    this.#jobs.delete(id);
    clearTimeout(j.timer);
    const base = join(this.#dir, String(id));
    const read = (f: string): string => {
      try {
        const s = readFileSync(f, "utf8");
        unlinkSync(f);
        return s;
      } catch {
        return "";
      }
    };
    const stdout = why === undefined ? read(`${base}.out`) : "";
    const stderr = why === undefined ? read(`${base}.err`) : why;
    j.resolve({ code, stdout, stderr });
  }
}
