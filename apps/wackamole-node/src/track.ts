/**
 * The health check (`track`): a command run every `intervalMs` (never two at once) with a timeout.
 * After `fall` consecutive failures the node is unhealthy (it gives up its VIPs); after `rise`
 * consecutive successes it is healthy again. Starts healthy.
 */
import type { Logger } from "@spines-ts/primitives";
import type { TrackConfig } from "./config.ts";
import { runShell, type ShellRunner } from "./run-command.ts";

export interface TrackStats {
  checks: number;
  failures: number;
  timeouts: number;
  transitions: number;
}

export class HealthTracker {
  #cfg: TrackConfig;
  readonly #log: Logger;
  readonly #shell: ShellRunner;
  readonly #onChange: (healthy: boolean) => void;
  #healthy = true;
  #fails = 0;
  #oks = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #stopped = false;
  readonly stats: TrackStats = { checks: 0, failures: 0, timeouts: 0, transitions: 0 };

  constructor(
    cfg: TrackConfig,
    log: Logger,
    onChange: (healthy: boolean) => void,
    shell: ShellRunner = runShell,
  ) {
    this.#shell = shell;
    this.#cfg = cfg;
    this.#log = log;
    this.#onChange = onChange;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get config(): TrackConfig {
    return this.#cfg;
  }

  start(): void {
    this.#stopped = false;
    this.#arm(0);
  }

  /** New settings (SIGHUP): the counters restart; the health state is kept. */
  update(cfg: TrackConfig): void {
    this.#cfg = cfg;
    this.#fails = 0;
    this.#oks = 0;
    if (!this.#running) this.#arm(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#check(), ms);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    if (this.#stopped || this.#running) return;
    this.#running = true;
    const cfg = this.#cfg;
    const r = await this.#shell(cfg.command, cfg.timeoutMs);
    this.#running = false;
    if (this.#stopped) return;
    this.stats.checks++;
    const ok = r.code === 0 && !r.timedOut;
    if (ok) {
      this.#oks++;
      this.#fails = 0;
    } else {
      this.stats.failures++;
      if (r.timedOut) this.stats.timeouts++;
      this.#fails++;
      this.#oks = 0;
      this.#log.debug(
        {
          command: cfg.command,
          code: r.code,
          signal: r.signal,
          timedOut: r.timedOut,
          stderr: r.stderr || undefined,
          error: r.error,
        },
        "track check failed",
      );
    }
    if (this.#healthy && this.#fails >= cfg.fall) this.#set(false, r);
    else if (!this.#healthy && this.#oks >= cfg.rise) this.#set(true, r);
    this.#arm(cfg.intervalMs);
  }

  #set(healthy: boolean, r: { code: number | null; timedOut: boolean }): void {
    this.#healthy = healthy;
    this.stats.transitions++;
    if (healthy) this.#log.info({ rise: this.#cfg.rise }, "track healthy");
    else this.#log.warn({ fall: this.#cfg.fall, code: r.code, timedOut: r.timedOut }, "track failing");
    try {
      this.#onChange(healthy);
    } catch (e) {
      this.#log.error({ err: String(e) }, "track state change handler threw");
    }
  }
}
