/** Runs a shell command with a timeout; the whole process group is killed when it runs over. */
import { spawn } from "node:child_process";

export interface CommandOutcome {
  /** Exit code (null when killed by a signal or not started). */
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  /** Could not be started at all (the shell missing: ENOENT). */
  readonly error?: string;
  /** The last bytes of its stderr (at most 512). */
  readonly stderr: string;
}

const MAX_STDERR = 512;

/** Runs a shell command (see {@link runShell}); the daemon passes its command worker's. */
export type ShellRunner = (
  command: string,
  timeoutMs: number,
  env?: Record<string, string>,
) => Promise<CommandOutcome>;

export function runShell(
  command: string,
  timeoutMs: number,
  env: Record<string, string> = {},
): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    let stderr = "";
    let timedOut = false;
    let done = false;
    const finish = (o: Omit<CommandOutcome, "stderr" | "timedOut">) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...o, timedOut, stderr: stderr.slice(-MAX_STDERR) });
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn("/bin/sh", ["-c", command], {
        detached: true,
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, ...env },
      });
    } catch (e) {
      resolve({ code: null, signal: null, timedOut: false, error: String(e), stderr: "" });
      return;
    }
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      stderr = (stderr + d).slice(-MAX_STDERR);
    });
    child.on("error", (e) => finish({ code: null, signal: null, error: e.message }));
    child.on("close", (code, signal) => finish({ code, signal }));
  });
}
