/**
 * @packageDocumentation
 * Deterministic discrete-event network simulator that runs real spines-ts protocol cores under a virtual clock.
 */
export {};
