/** Spawns member processes (tools/member.ts under tsx) and waits for their JSON-line events. */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, "..", "tools", "member.ts");
const root = join(here, "..", "..", "..");

export type Line = Record<string, unknown> & { ev: string };

export async function freePorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createSocket>>((resolve) => {
          const s = createSocket("udp4");
          s.bind(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = socks.map((s) => s.address().port);
  for (const s of socks) s.close();
  return ports;
}

export class Proc {
  readonly id: number;
  readonly child: ChildProcess;
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  #waiters: { pred: (l: Line) => boolean; from: number; resolve: (l: Line) => void }[] = [];
  exited = false;
  exitStatus: number | string | null = null;

  constructor(id: number, args: string[]) {
    this.id = id;
    // node itself with the tsx loader (not the tsx CLI, which relays to a child): signals must
    // reach the member process
    this.child = spawn(process.execPath, ["--import", "tsx", cli, ...args], {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let buf = "";
    this.child.stdout?.setEncoding("utf8");
    this.child.stdout?.on("data", (chunk: string) => {
      buf += chunk;
      for (;;) {
        const i = buf.indexOf("\n");
        if (i < 0) break;
        const text = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let l: Line;
        try {
          l = JSON.parse(text) as Line;
        } catch {
          continue;
        }
        this.lines.push(l);
        const idx = this.lines.length - 1;
        this.#waiters = this.#waiters.filter((w) => {
          if (idx >= w.from && w.pred(l)) {
            w.resolve(l);
            return false;
          }
          return true;
        });
      }
    });
    this.child.stderr?.setEncoding("utf8");
    this.child.stderr?.on("data", (c: string) => this.stderr.push(c));
    this.child.on("exit", (code, signal) => {
      this.exited = true;
      this.exitStatus = signal ?? code;
    });
  }

  /** Resolves with the first line (at index >= from) matching `pred`; rejects after `timeoutMs`. */
  waitFor(pred: (l: Line) => boolean, timeoutMs = 20_000, from = 0): Promise<Line> {
    const hit = this.lines.slice(from).find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `member ${this.id}: timed out${this.exited ? ` (exited: ${this.exitStatus})` : ""}; last lines:\n${this.lines
                .slice(-8)
                .map((l) => JSON.stringify(l))
                .join("\n")}\nstderr: ${this.stderr.join("").slice(-2000)}`,
            ),
          ),
        timeoutMs,
      );
      this.#waiters.push({
        pred,
        from,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  waitView(members: number[], timeoutMs = 20_000, from = 0): Promise<Line> {
    const want = members.join(",");
    return this.waitFor(
      (l) => l.ev === "view" && (l.members as number[]).join(",") === want,
      timeoutMs,
      from,
    );
  }

  send(cmd: string): void {
    this.child.stdin?.write(`${cmd}\n`);
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.child.kill(signal);
  }
}

export function startMembers(ids: number[], ports: number[], extra: string[] = []): Proc[] {
  return ids.map((id, i) => startMember(id, ids, ports, i, extra));
}

export function startMember(
  id: number,
  ids: number[],
  ports: number[],
  i: number,
  extra: string[] = [],
): Proc {
  const peers = ids
    .map((p, j) => (p === id ? "" : `${p}@127.0.0.1:${ports[j]}`))
    .filter((s) => s !== "")
    .join(",");
  return new Proc(id, ["--id", String(id), "--port", String(ports[i]), "--peers", peers, ...extra]);
}

/**
 * Starts a group and waits for its full view; if a member fails to start (a port taken between
 * `freePorts` and its bind, on a machine shared with other test runs), retries with fresh ports.
 */
export async function startGroup(
  ids: number[],
  extra: string[] = [],
  timeoutMs = 60_000,
  attempts = 3,
): Promise<{ procs: Proc[]; ports: number[] }> {
  let last: unknown;
  for (let a = 0; a < attempts; a++) {
    const ports = await freePorts(ids.length);
    const procs = startMembers(ids, ports, extra);
    try {
      await Promise.all(procs.map((p) => p.waitView(ids, timeoutMs)));
      return { procs, ports };
    } catch (e) {
      last = e;
      for (const p of procs) if (!p.exited) p.kill("SIGKILL");
    }
  }
  throw last;
}
