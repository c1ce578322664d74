import type { MessageSpec } from "../registry.ts";

/** Messages of the links: liveness, ARQ, acks (0x11-0x1F; 0x10 is Datagram). */
export type LinkMessage = never;
export const linkMessages: readonly MessageSpec<LinkMessage>[] = [];
