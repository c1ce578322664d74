/**
 * @packageDocumentation
 * Link-state routing for the overlay: reliable flooding, Dijkstra, disjoint paths, multicast and anycast groups, sans-IO.
 */
export {};
