import type { MessageSpec } from "../registry.ts";

/** Messages of the membership: heartbeats, views, ordered messages (0x40-0x4F). */
export type MembershipMessage = never;
export const membershipMessages: readonly MessageSpec<MembershipMessage>[] = [];
