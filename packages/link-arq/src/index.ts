/**
 * @packageDocumentation
 * Overlay links, sans-IO: per-neighbour liveness (hellos, dead timeout, hold-down, restart
 * detection by incarnation), clock-offset-free RTT and receiver-measured loss, and three link
 * protocols — a reliable hop-by-hop ARQ (selective repeat, SACK, RACK-style loss detection, RTO
 * with a ms floor, TCP-fair congestion control, DRR across flows, bounded buffers with
 * back-pressure), a real-time link (one bounded-latency retransmission) and a best-effort link.
 * `Link` is the core; `LinkDriver` runs cores on a `Host` (the simulator or a UDP daemon).
 * The design is in docs/links.md, the messages in docs/wire.md §3.
 */
export { DATA_OVERHEAD_BYTES, defaultLinkConfig, type LinkConfig, resolveLinkConfig } from "./config.ts";
export { LinkDriver, type LinkDriverOptions } from "./driver.ts";
export { flowKeyOf, Link, type LinkOptions, type LinkStats } from "./link.ts";
export type { ReliableReceiver, ReliableSender } from "./reliable.ts";
export { type Delivery, type LinkEvent, type LinkMetrics, type LinkState, SendResult } from "./types.ts";
export type { UnreliableReceiver, UnreliableSender } from "./unreliable.ts";
