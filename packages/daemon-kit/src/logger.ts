import type { Logger } from "@spines-ts/primitives";
import { destination, type Logger as PinoLogger, pino } from "pino";

/** The levels a daemon logs at; `silent` logs nothing. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A daemon's logger: pino (JSON lines on a file descriptor) behind the primitives `Logger`. */
export interface DaemonLogger {
  readonly log: Logger;
  /** Changes the level of this logger and of every child made from it (SIGHUP reload). */
  setLevel(level: LogLevel): void;
  readonly level: LogLevel;
  flush(): void;
}

const RANK: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: 100,
};

function wrap(p: PinoLogger, state: { rank: number }): Logger {
  return {
    debug: (obj, msg) => {
      if (state.rank <= 20) typeof obj === "string" ? p.debug(obj) : p.debug(obj, msg);
    },
    info: (obj, msg) => {
      if (state.rank <= 30) typeof obj === "string" ? p.info(obj) : p.info(obj, msg);
    },
    warn: (obj, msg) => {
      if (state.rank <= 40) typeof obj === "string" ? p.warn(obj) : p.warn(obj, msg);
    },
    error: (obj, msg) => {
      if (state.rank <= 50) typeof obj === "string" ? p.error(obj) : p.error(obj, msg);
    },
    child: (bindings) => wrap(p.child(bindings), state),
  };
}

/**
 * A pino logger writing JSON lines synchronously to `fd` (default 2, stderr), every record with the
 * process id. `setLevel` changes the level of it and of every child made from it.
 */
export function createDaemonLogger(level: LogLevel, fd = 2): DaemonLogger {
  const dest = destination({ dest: fd, sync: true });
  // pino itself lets everything through; the shared threshold below filters, so that a level
  // change reaches child loggers too.
  const p = pino({ level: "trace", base: { pid: process.pid } }, dest);
  const state = { rank: RANK[level], level };
  return {
    log: wrap(p, state),
    setLevel(l) {
      state.rank = RANK[l];
      state.level = l;
    },
    get level() {
      return state.level;
    },
    flush() {
      dest.flushSync();
    },
  };
}
