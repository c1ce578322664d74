/** Running external commands (ip, tc, socat, ...) with captured output. */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { NetlabError } from "./errors.ts";

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when the command could not be started or was killed by a signal. */
  code: number;
}

/** Runs `argv` and resolves with its output and exit code; never rejects. */
export function run(
  argv: readonly string[],
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (cmd === undefined) {
      resolve({ stdout: "", stderr: "empty command", code: -1 });
      return;
    }
    let stdout = "";
    let stderr = "";
    let done = false;
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill("SIGKILL");
          }, opts.timeoutMs);
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < 4_000_000) stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 1_000_000) stderr += d;
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const finish = (code: number, extra = "") => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      resolve({ stdout, stderr: stderr + extra, code });
    };
    child.on("error", (e) => finish(-1, String(e)));
    child.on("close", (code) => finish(code ?? -1));
  });
}

/** Runs `argv` and throws NetlabError("ERR_COMMAND") unless it exits with 0. */
export async function must(
  argv: readonly string[],
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<string> {
  const r = await run(argv, { timeoutMs: 20_000, ...opts });
  if (r.code !== 0) {
    throw new NetlabError("ERR_COMMAND", `\`${argv.join(" ")}\` exited with ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** True when `cmd` is on PATH. */
export function have(cmd: string): boolean {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
  return r.status === 0;
}

/** True when process `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
