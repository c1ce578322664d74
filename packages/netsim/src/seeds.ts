import { SimSeedError } from "./errors.ts";

export interface ForEachSeedOptions {
  /** First seed. Default 1. */
  startSeed?: number;
}

function envSeed(): number | undefined {
  const v = typeof process === "undefined" ? undefined : process.env.NETSIM_SEED;
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n))
    throw new RangeError(`NETSIM_SEED must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Runs `fn(seed)` for `count` consecutive seeds from `startSeed` and rethrows the first failure as a
 * `SimSeedError` whose message names the seed (the original error is its `cause`). With the
 * environment variable `NETSIM_SEED=n` set, runs only seed n, to replay a failure.
 */
export function forEachSeed(
  count: number,
  fn: (seed: number) => void,
  options: ForEachSeedOptions = {},
): void {
  if (!(Number.isInteger(count) && count >= 0))
    throw new RangeError(`forEachSeed: count must be an integer >= 0`);
  const only = envSeed();
  const start = only ?? options.startSeed ?? 1;
  const n = only === undefined ? count : 1;
  for (let i = 0; i < n; i++) {
    const seed = start + i;
    try {
      fn(seed);
    } catch (e) {
      throw new SimSeedError(seed, e);
    }
  }
}

/** `forEachSeed` for async bodies (seeds run one after another). */
export async function forEachSeedAsync(
  count: number,
  fn: (seed: number) => Promise<void>,
  options: ForEachSeedOptions = {},
): Promise<void> {
  if (!(Number.isInteger(count) && count >= 0))
    throw new RangeError(`forEachSeed: count must be an integer >= 0`);
  const only = envSeed();
  const start = only ?? options.startSeed ?? 1;
  const n = only === undefined ? count : 1;
  for (let i = 0; i < n; i++) {
    const seed = start + i;
    try {
      await fn(seed);
    } catch (e) {
      throw new SimSeedError(seed, e);
    }
  }
}
