/**
 * @packageDocumentation
 * Overlay links: neighbour liveness, hop-by-hop reliable ARQ, real-time and best-effort links, sans-IO.
 */
export {};
