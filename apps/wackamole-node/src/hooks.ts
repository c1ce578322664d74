/**
 * Hooks: a command run on every VIP up and down (`hooks.up` / `hooks.down`) with the event in the
 * environment: WACK_EVENT=up|down, WACK_GROUP, WACK_ADDRESSES (space-separated address/len),
 * WACK_INTERFACES, WACK_NODE_ID. At most `concurrency` run at once; up to MAX_QUEUED_HOOKS wait
 * (past that new ones are dropped, counted and logged). A failing or hanging hook is logged and
 * killed at its timeout; never fatal.
 */
import type { Logger } from "@spines-ts/primitives";
import type { HooksConfig } from "./config.ts";
import { runShell, type ShellRunner } from "./run-command.ts";

export const MAX_QUEUED_HOOKS = 256;

export interface HookStats {
  started: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  dropped: number;
}

interface Job {
  readonly event: "up" | "down";
  readonly command: string;
  readonly env: Record<string, string>;
}

export class HookRunner {
  #cfg: HooksConfig;
  readonly #log: Logger;
  readonly #shell: ShellRunner;
  readonly #queue: Job[] = [];
  #running = 0;
  #idle: (() => void)[] = [];
  readonly stats: HookStats = { started: 0, succeeded: 0, failed: 0, timedOut: 0, dropped: 0 };

  constructor(cfg: HooksConfig, log: Logger, shell: ShellRunner = runShell) {
    this.#shell = shell;
    this.#cfg = cfg;
    this.#log = log;
  }

  update(cfg: HooksConfig): void {
    this.#cfg = cfg;
    this.#pump();
  }

  get pending(): number {
    return this.#queue.length + this.#running;
  }

  run(event: "up" | "down", env: Record<string, string>): void {
    const command = event === "up" ? this.#cfg.up : this.#cfg.down;
    if (command === undefined) return;
    if (this.#queue.length >= MAX_QUEUED_HOOKS) {
      this.stats.dropped++;
      this.#log.warn({ event, group: env.WACK_GROUP }, "hook queue full; hook dropped");
      return;
    }
    this.#queue.push({ event, command, env: { WACK_EVENT: event, ...env } });
    this.#pump();
  }

  /** Resolves when no hook runs or waits. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  #pump(): void {
    while (this.#running < this.#cfg.concurrency && this.#queue.length > 0) {
      const job = this.#queue.shift() as Job;
      this.#running++;
      this.stats.started++;
      void this.#shell(job.command, this.#cfg.timeoutMs, job.env).then((r) => {
        this.#running--;
        if (r.code === 0 && !r.timedOut) {
          this.stats.succeeded++;
          this.#log.debug({ event: job.event, group: job.env.WACK_GROUP }, "hook ran");
        } else {
          this.stats.failed++;
          if (r.timedOut) this.stats.timedOut++;
          this.#log.warn(
            {
              event: job.event,
              group: job.env.WACK_GROUP,
              code: r.code,
              signal: r.signal,
              timedOut: r.timedOut,
              stderr: r.stderr || undefined,
              error: r.error,
            },
            "hook failed",
          );
        }
        this.#pump();
        if (this.pending === 0) for (const f of this.#idle.splice(0)) f();
      });
    }
  }
}
