/**
 * @packageDocumentation
 * Group membership with agreed views and totally ordered delivery (the role Spread plays for
 * Wackamole). Members join a named group and receive views (unique id, member list identical at
 * every member that installs it); within a view every multicast is delivered to every member, the
 * sender included, in one total order that respects each sender's FIFO order; members that move
 * together between two views delivered the same messages in the first (virtual synchrony). Failure
 * detection is by heartbeats with configurable timing (`profiles.default`, `profiles.fast`).
 *
 * `MembershipCore` is the sans-IO state machine; `MembershipNode` drives it on any `Host` (the
 * simulator's, or `@spines-ts/node-host`'s `UdpHost`). The UDP shell, `UdpMember` (a
 * `MembershipNode` on a `UdpHost`, with a peer list or multicast/broadcast discovery), is imported
 * from `@spines-ts/membership/udp`, so this entry point never loads `node:dgram`.
 * The protocol is specified in docs/membership.md, its messages in docs/wire.md.
 */
export { MembershipCore, type MembershipStats } from "./core.ts";
export {
  type MembershipHandler,
  MembershipNode,
  type MembershipNodeOptions,
  membershipFactory,
} from "./driver.ts";
export { MembershipObserver } from "./observer.ts";
export {
  compareViewIds,
  type Delivery,
  defaultLimits,
  groupHash,
  type Limits,
  type MembershipConfig,
  MembershipError,
  type MembershipEvent,
  NO_VIEW,
  NotJoinedError,
  type ProfileName,
  profiles,
  sameViewId,
  type Timing,
  type Transmit,
  type View,
  type ViewId,
  viewKey,
} from "./types.ts";
