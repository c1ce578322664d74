import type { VipNeighbor } from "@spines-ts/wire";
import type { VipAddress, VipGroup } from "./config.ts";

/**
 * What the VIP protocol needs from the machine: raise a group's addresses (and announce them) or
 * lower them. Operations are idempotent (acquiring a held group or releasing a free one succeeds)
 * and report failure by rejecting (or throwing): the runner reports every failure as a
 * `driverError` event, never swallows it. `LinuxAddressDriver` (`@spines-ts/vip/linux`) does it with
 * `ip` and `arping`; `DryRunAddressDriver` records what it would do.
 */
export interface AddressDriver {
  /** Raise every address of the group and announce it; `neighbors` are known peers to notify directly. */
  acquire(group: VipGroup, neighbors: readonly VipNeighbor[]): void | Promise<void>;
  release(group: VipGroup): void | Promise<void>;
  /** A sample of the local neighbour cache to share with the other members (optional). */
  sampleNeighbors?(): readonly VipNeighbor[] | Promise<readonly VipNeighbor[]>;
}

export interface DryRunRecord {
  readonly op: "acquire" | "release";
  readonly group: string;
  readonly addresses: readonly string[];
  /** Neighbours the acquire would notify directly. */
  readonly notify?: number;
}

/**
 * Records what a real driver would do and keeps the resulting address set; used by the tests and
 * by `--dry-run`. Bounded: keeps the last `maxRecords` operations.
 */
export class DryRunAddressDriver implements AddressDriver {
  readonly records: DryRunRecord[] = [];
  readonly maxRecords: number;
  /** Addresses currently "on the interfaces": `iface address/len`. */
  readonly up = new Set<string>();
  /** Fail every operation on these groups (to test error reporting). */
  readonly failing = new Set<string>();
  neighborsToShare: VipNeighbor[] = [];

  constructor(maxRecords = 10_000) {
    this.maxRecords = maxRecords;
  }

  static key(a: VipAddress): string {
    return `${a.iface} ${a.cidr}`;
  }

  acquire(group: VipGroup, neighbors: readonly VipNeighbor[]): void {
    this.#record({
      op: "acquire",
      group: group.name,
      addresses: group.addresses.map(DryRunAddressDriver.key),
      notify: neighbors.length,
    });
    if (this.failing.has(group.name)) throw new Error(`dry-run: acquire ${group.name} fails (as asked)`);
    for (const a of group.addresses) this.up.add(DryRunAddressDriver.key(a));
  }

  release(group: VipGroup): void {
    this.#record({
      op: "release",
      group: group.name,
      addresses: group.addresses.map(DryRunAddressDriver.key),
    });
    if (this.failing.has(group.name)) throw new Error(`dry-run: release ${group.name} fails (as asked)`);
    for (const a of group.addresses) this.up.delete(DryRunAddressDriver.key(a));
  }

  sampleNeighbors(): readonly VipNeighbor[] {
    return this.neighborsToShare;
  }

  #record(r: DryRunRecord): void {
    this.records.push(r);
    if (this.records.length > this.maxRecords) this.records.splice(0, this.records.length - this.maxRecords);
  }
}
