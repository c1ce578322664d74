/**
 * @packageDocumentation
 * N-way virtual IP fail-over after Wackamole (Schlossnagle et al., Johns Hopkins): a cluster shares
 * a table of VIP groups (addresses of both families, on one or more interfaces, that move
 * together); on every agreed membership view the members exchange their state through the
 * membership service's total order and run one deterministic allocation, so that once the exchange
 * completes every group is held by exactly one member of each connected component.
 *
 * - `allocate` / `settle`: the allocation, a pure function (docs/vip.md §3).
 * - `VipCore`: the protocol as a sans-IO state machine (§4).
 * - `VipNode`: runs it on a `Host` next to a `MembershipNode` (netsim or a daemon).
 * - `DryRunAddressDriver`: records what a real driver would do. The Linux driver (`ip`, `arping`,
 *   `na6`) is the subpath export `@spines-ts/vip/linux`, so that nothing here touches node:*.
 *
 * The algorithm and its correctness argument: docs/vip.md; the messages: docs/wire.md §7.
 */
export {
  type Allocation,
  allocate,
  loads,
  type MemberState,
  type Move,
  type MoveCause,
  NO_OWNER,
  settle,
  type Table,
} from "./allocate.ts";
export {
  MAX_ADDRESSES_PER_GROUP,
  MAX_GROUPS,
  parseVipAddress,
  parseVipGroups,
  tableFingerprint,
  type VipAddress,
  type VipAddressInput,
  type VipGroup,
  type VipGroupInput,
} from "./config.ts";
export {
  type BalanceMode,
  type VipAction,
  type VipConfig,
  VipCore,
  type VipEvent,
  type VipPhase,
  type VipSnapshot,
} from "./core.ts";
export { type AddressDriver, DryRunAddressDriver, type DryRunRecord } from "./driver.ts";
export { VipNode, type VipNodeEvent, type VipNodeOptions, vipFactory } from "./node.ts";
