import type { MessageSpec } from "../registry.ts";

/** Messages of the VIP fail-over state (0x50-0x5F). */
export type VipMessage = never;
export const vipMessages: readonly MessageSpec<VipMessage>[] = [];
