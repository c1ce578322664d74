/**
 * The message families. Each protocol family owns one file here and one range of type bytes
 * (see docs/wire.md): 0x01-0x0F common, 0x10-0x1F data and links, 0x20-0x2F routing,
 * 0x30-0x3F sessions, 0x40-0x4F membership, 0x50-0x5F VIP fail-over.
 * A family's file exports its union type and its list of specs; both are gathered here.
 */
import type { MessageSpec, Tagged } from "../registry.ts";
import { type DataMessage, dataMessages } from "./data.ts";
import { type LinkMessage, linkMessages } from "./link.ts";
import { type MembershipMessage, membershipMessages } from "./membership.ts";
import { type RoutingMessage, routingMessages } from "./routing.ts";
import { type SessionMessage, sessionMessages } from "./session.ts";
import { type VipMessage, vipMessages } from "./vip.ts";

export type Message =
  | DataMessage
  | LinkMessage
  | RoutingMessage
  | SessionMessage
  | MembershipMessage
  | VipMessage;

export const allMessageSpecs: readonly MessageSpec<Tagged>[] = [
  ...dataMessages,
  ...linkMessages,
  ...routingMessages,
  ...sessionMessages,
  ...membershipMessages,
  ...vipMessages,
] as readonly MessageSpec<Tagged>[];
