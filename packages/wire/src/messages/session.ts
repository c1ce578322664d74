import type { MessageSpec } from "../registry.ts";

/** Messages of the end-to-end sessions (0x30-0x3F). */
export type SessionMessage = never;
export const sessionMessages: readonly MessageSpec<SessionMessage>[] = [];
