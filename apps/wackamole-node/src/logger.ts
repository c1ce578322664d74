import type { Logger } from "@spines-ts/primitives";
import { destination, type Logger as PinoLogger, pino } from "pino";
import type { LogLevel } from "./config.ts";

/** The daemon's logger: pino (JSON lines on stdout by default) behind the primitives `Logger`. */
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

export function createDaemonLogger(level: LogLevel, fd = 1): DaemonLogger {
  const dest = destination({ dest: fd, sync: true });
  // pino lets everything through; the shared threshold filters, so a level change reaches children.
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
