/**
 * The logging surface a library depends on. It is the subset of pino's API that the cores use, so a
 * pino logger can be passed straight in; only the daemons create a real one.
 */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

export interface LogRecord {
  level: "debug" | "info" | "warn" | "error";
  bindings: Record<string, unknown>;
  obj: object | undefined;
  msg: string | undefined;
}

/**
 * A logger that keeps at most `capacity` records in memory (oldest dropped first): for tests that
 * assert on what was logged, and for the simulator's trace.
 */
export class MemoryLogger implements Logger {
  readonly records: LogRecord[];
  readonly #capacity: number;
  readonly #bindings: Record<string, unknown>;
  constructor(capacity = 10_000, bindings: Record<string, unknown> = {}, records: LogRecord[] = []) {
    this.#capacity = capacity;
    this.#bindings = bindings;
    this.records = records;
  }
  #push(level: LogRecord["level"], obj: object | string, msg?: string): void {
    const rec: LogRecord =
      typeof obj === "string"
        ? { level, bindings: this.#bindings, obj: undefined, msg: obj }
        : { level, bindings: this.#bindings, obj, msg };
    this.records.push(rec);
    if (this.records.length > this.#capacity) this.records.shift();
  }
  debug(obj: object | string, msg?: string): void {
    this.#push("debug", obj, msg);
  }
  info(obj: object | string, msg?: string): void {
    this.#push("info", obj, msg);
  }
  warn(obj: object | string, msg?: string): void {
    this.#push("warn", obj, msg);
  }
  error(obj: object | string, msg?: string): void {
    this.#push("error", obj, msg);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new MemoryLogger(this.#capacity, { ...this.#bindings, ...bindings }, this.records);
  }
}

/**
 * Lets at most `burst` messages per `key` through in each `windowMs`, then counts the rest and
 * reports how many were suppressed with the next message that passes. Used for per-packet errors,
 * so a flood of bad packets cannot flood the log. Time comes from the caller.
 */
export class RateLimitedLog {
  readonly #windows = new Map<string, { start: number; passed: number; suppressed: number }>();
  readonly #maxKeys: number;
  readonly log: Logger;
  readonly windowMs: number;
  readonly burst: number;
  constructor(log: Logger, windowMs = 1000, burst = 5, maxKeys = 256) {
    this.log = log;
    this.windowMs = windowMs;
    this.burst = burst;
    this.#maxKeys = maxKeys;
  }
  debug(now: number, key: string, obj: Record<string, unknown>, msg: string): void {
    let w = this.#windows.get(key);
    if (w === undefined) {
      if (this.#windows.size >= this.#maxKeys) this.#windows.clear();
      w = { start: now, passed: 0, suppressed: 0 };
      this.#windows.set(key, w);
    }
    if (now - w.start >= this.windowMs) {
      w.start = now;
      w.passed = 0;
    }
    if (w.passed < this.burst) {
      w.passed++;
      const suppressed = w.suppressed;
      w.suppressed = 0;
      this.log.debug(suppressed > 0 ? { ...obj, suppressed } : obj, msg);
    } else {
      w.suppressed++;
    }
  }
}
