/**
 * The base of every error this project throws on purpose. Each condition has its own subclass with
 * `name` set, plus a stable machine-readable `code`; callers match on `name` or `code`, never on the
 * message text.
 */
export class SpinesError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SpinesError";
    this.code = code;
  }
}

/** Thrown when a bounded buffer, queue or table is full and the caller asked to add anyway. */
export class CapacityError extends SpinesError {
  readonly limit: number;
  constructor(what: string, limit: number) {
    super("ERR_CAPACITY", `${what} is full (limit ${limit})`);
    this.name = "CapacityError";
    this.limit = limit;
  }
}

/** Thrown when a configuration value is invalid; names where it came from and what was expected. */
export class ConfigError extends SpinesError {
  readonly source: string;
  readonly key: string;
  constructor(source: string, key: string, expected: string, found: unknown) {
    super(
      "ERR_CONFIG",
      `${source}: ${key}: expected ${expected}, found ${typeof found === "string" ? JSON.stringify(found) : String(found)}`,
    );
    this.name = "ConfigError";
    this.source = source;
    this.key = key;
  }
}
