import type { MessageSpec } from "../registry.ts";

/** Messages of the routing: link-state updates, acks, database exchange, groups (0x20-0x2F). */
export type RoutingMessage = never;
export const routingMessages: readonly MessageSpec<RoutingMessage>[] = [];
