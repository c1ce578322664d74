import { SpinesError } from "@spines-ts/primitives";

/** One decoded record of the simulator's event trace (see `Simulator.trace()`). */
export interface TraceRecord {
  /** Virtual time in ms. */
  readonly time: number;
  /** What happened: "send", "deliver", "drop", "timer", "action", "crash", ... */
  readonly kind: string;
  /** The node the event happened at (the sender for "send" and "drop"). */
  readonly node: number;
  /** The other node (receiver of a send, sender of a delivery), or 0. */
  readonly peer: number;
  /** Payload size for packets, the drop cause for drops, else 0. */
  readonly info: number | string;
}

function replayHint(seed: number): string {
  return `replay with new Simulator({ seed: ${seed}, ... }) (same setup, same seed: same run)`;
}

function fmtTime(t: number): string {
  return Number.isInteger(t) ? String(t) : t.toFixed(3);
}

/**
 * An invariant registered with `Simulator.addInvariant` returned a complaint. Carries the seed, the
 * virtual time, the invariant's name and the last few trace records; the message says how to replay.
 */
export class SimInvariantError extends SpinesError {
  readonly seed: number;
  readonly time: number;
  readonly invariant: string;
  readonly detail: string;
  readonly trace: readonly TraceRecord[];
  constructor(seed: number, time: number, invariant: string, detail: string, trace: readonly TraceRecord[]) {
    super(
      "ERR_SIM_INVARIANT",
      `invariant "${invariant}" violated at t=${fmtTime(time)} ms, seed ${seed}: ${detail}; ${replayHint(seed)}`,
    );
    this.name = "SimInvariantError";
    this.seed = seed;
    this.time = time;
    this.invariant = invariant;
    this.detail = detail;
    this.trace = trace;
  }
}

/**
 * Something a node program, timer callback or scripted action threw while the simulator ran it.
 * The original error is the `cause`; the message names the seed, the time and the node.
 */
export class SimEventError extends SpinesError {
  readonly seed: number;
  readonly time: number;
  /** The node whose code threw, or undefined for a scripted action. */
  readonly node: number | undefined;
  constructor(seed: number, time: number, node: number | undefined, where: string, cause: unknown) {
    const msg = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      "ERR_SIM_EVENT",
      `${where}${node === undefined ? "" : ` at node ${node}`} threw at t=${fmtTime(time)} ms, seed ${seed}: ${msg}; ${replayHint(seed)}`,
      { cause },
    );
    this.name = "SimEventError";
    this.seed = seed;
    this.time = time;
    this.node = node;
  }
}

/** Thrown by `forEachSeed` when the body fails for one seed; the message names the seed to replay. */
export class SimSeedError extends SpinesError {
  readonly seed: number;
  constructor(seed: number, cause: unknown) {
    const msg = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      "ERR_SIM_SEED",
      `failed for seed ${seed} (replay just this one: forEachSeed(1, fn, { startSeed: ${seed} }) or NETSIM_SEED=${seed}): ${msg}`,
      { cause },
    );
    this.name = "SimSeedError";
    this.seed = seed;
  }
}
