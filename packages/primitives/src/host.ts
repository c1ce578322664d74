import type { Clock } from "./clock.ts";
import type { Logger } from "./logger.ts";
import type { Rng } from "./rng.ts";
import type { Cancel } from "./timers.ts";

/** A node's identity on the overlay or in a membership group: an unsigned 32-bit integer. */
export type NodeId = number;

/**
 * What a protocol driver needs from the world it runs in. The simulator (`@spines-ts/netsim`) and
 * the daemons both provide one, so the same driver code that turns a sans-IO core's outputs into
 * actions runs under virtual time in tests and over real UDP in production.
 */
export interface Host {
  readonly id: NodeId;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  /** Sends one datagram to a peer; may be dropped by the network, never throws for that. */
  send(to: NodeId, data: Uint8Array): void;
  /** Calls `fn` at absolute time `at` (on `clock`). */
  schedule(at: number, fn: () => void): Cancel;
}

/** The program a simulated or real node runs: it gets its Host on start and datagrams after. */
export interface NodeProgram {
  receive(from: NodeId, data: Uint8Array): void;
  /** Called when the node is stopped (a crash in the simulator drops the program without calling this). */
  stop?(): void;
}

/** Builds a node's program; called again on every restart, so no state survives a crash. */
export type NodeFactory = (host: Host) => NodeProgram;
