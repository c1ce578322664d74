import { type MembershipEvent, MembershipNode, type MembershipNodeOptions } from "@spines-ts/membership";
import {
  CoreDriver,
  type Host,
  type NodeFactory,
  type NodeId,
  type NodeProgram,
} from "@spines-ts/primitives";
import type { VipNeighbor } from "@spines-ts/wire";
import { type VipAction, type VipConfig, VipCore, type VipEvent } from "./core.ts";
import { type AddressDriver, DryRunAddressDriver } from "./driver.ts";

/** Events of a running VIP node: the core's, plus failures of the address driver. */
export type VipNodeEvent =
  | VipEvent
  | {
      readonly type: "driverError";
      readonly action: VipAction["type"];
      readonly group: string;
      readonly error: unknown;
    }
  | { readonly type: "multicastError"; readonly error: unknown };

export interface VipNodeOptions {
  readonly vip: VipConfig;
  /** Options of the membership member run next to the VIP core (the group name at least). */
  readonly membership: Omit<MembershipNodeOptions, "autoJoin">;
  /** Default: a `DryRunAddressDriver`. */
  readonly driver?: AddressDriver;
  readonly onEvent?: (ev: VipNodeEvent, node: VipNode) => void;
  /** Sees every membership event (views, deliveries, leaves) before the VIP core does; for logs and metrics. */
  readonly onMembership?: (ev: MembershipEvent, node: VipNode) => void;
}

/** Most payloads waiting for the membership service to take them (it said "would block"). */
const MAX_BACKLOG = 4096;

/**
 * Runs a `VipCore` on a `Host` next to a `MembershipNode` (the shared `CoreDriver` pattern of
 * `@spines-ts/primitives`): membership views and deliveries go into the core; the core's payloads
 * are multicast in the group; its actions go to the `AddressDriver` — in order for each group (an
 * asynchronous driver's operations on one group are serialized), concurrently across groups (a
 * fail-over of several groups waits for the slowest, not for the sum) — and every failure is
 * reported as a `driverError` event.
 */
export class VipNode implements NodeProgram {
  readonly host: Host;
  readonly core: VipCore;
  readonly driver: AddressDriver;
  #membership: MembershipNode;
  readonly #options: VipNodeOptions;
  readonly #run: CoreDriver;
  #backlog: Uint8Array[] = [];
  /** Per group: the tail of its pending asynchronous operations (absent when none is pending). */
  readonly #chains = new Map<string, Promise<void>>();
  #paused = false;
  #stopped = false;

  constructor(host: Host, options: VipNodeOptions) {
    this.host = host;
    this.#options = options;
    this.driver = options.driver ?? new DryRunAddressDriver();
    this.core = new VipCore(options.vip, host.id);
    this.#run = new CoreDriver(host, {
      drain: () => this.#drain(),
      hasOutput: () => this.core.hasOutput(),
      nextDeadline: () => this.core.nextDeadline(),
      handleTimeout: (now) => {
        if (this.#paused) return false;
        this.core.handleTimeout(now);
        return true;
      },
    });
    this.#membership = this.#newMember();
    this.#run.input((now) => this.core.start(now, this.#membership.core.incarnation));
    this.#membership.join();
  }

  get membership(): MembershipNode {
    return this.#membership;
  }

  receive(from: NodeId, data: Uint8Array): void {
    if (this.#stopped) return;
    this.#membership.receive(from, data);
  }

  /** Graceful shutdown: release every VIP, then leave the group. */
  stop(): void {
    if (this.#stopped) return;
    this.#run.input((now) => this.core.stop(now));
    this.#stopped = true;
    try {
      this.#membership.leave();
    } catch {
      // already left
    }
    this.#membership.stop();
    this.#run.stop();
  }

  /** Simulated failure (`wackatrl -f`): release everything and leave the group until `rejoin`. */
  fail(): void {
    if (this.#stopped) return;
    this.#run.input((now) => this.core.fail(now));
    try {
      this.#membership.leave();
    } catch {
      // already left
    }
  }

  /** Rejoin after `fail` (or after the membership service was lost) as a new member incarnation. */
  rejoin(): void {
    if (this.#stopped) return;
    this.#membership.stop();
    this.#membership = this.#newMember();
    this.#run.input((now) => this.core.start(now, this.#membership.core.incarnation));
    this.#membership.join();
  }

  /** Simulates an unresponsive process (GC pause, SIGSTOP, CPU starvation): nothing runs until `resume`. */
  pause(): void {
    this.#paused = true;
    this.#membership.pause();
  }

  /** Ends a pause: overdue timers fire first, then queued packets are read (as an event loop would). */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#run.flush();
    this.#membership.resume();
  }

  /** Ask for a full balancing round now. */
  balanceNow(): boolean {
    return this.#run.input((now) => this.core.balanceNow(now)) ?? false;
  }

  /** Resolves when every address action issued so far has been carried out (or has failed). */
  async idle(): Promise<void> {
    while (this.#chains.size > 0) await Promise.all([...this.#chains.values()]);
  }

  #newMember(): MembershipNode {
    return new MembershipNode(this.host, { ...this.#options.membership, autoJoin: false }, (ev) =>
      this.#onMembership(ev),
    );
  }

  #onMembership(ev: MembershipEvent): void {
    if (this.#stopped) return;
    this.#options.onMembership?.(ev, this);
    switch (ev.type) {
      case "view":
        this.#run.input((now) => this.core.handleView(ev.view, now));
        return;
      case "message":
        this.#run.input((now) => this.core.handleDelivery(ev.message, now));
        return;
      case "drain":
        this.#run.flush();
        return;
      case "left":
        if (this.core.phase !== "failed") this.#run.input((now) => this.core.membershipLost(now));
        return;
      case "transitional":
        return;
    }
  }

  #drain(): boolean {
    let progress = false;
    const out = this.core.takeTransmits();
    if (out.length > 0) {
      progress = true;
      for (const p of out) {
        if (this.#backlog.length >= MAX_BACKLOG) {
          this.#emit({
            type: "multicastError",
            error: new Error("vip: multicast backlog full; payload dropped"),
          });
          break;
        }
        this.#backlog.push(p);
      }
    }
    while (this.#backlog.length > 0 && this.#membership.core.joined) {
      let ok: boolean;
      try {
        ok = this.#membership.multicast(this.#backlog[0] as Uint8Array);
      } catch (error) {
        this.#emit({ type: "multicastError", error });
        this.#backlog.shift();
        continue;
      }
      if (!ok) break;
      this.#backlog.shift();
      progress = true;
    }
    if (!this.#membership.core.joined) this.#backlog = [];
    for (const a of this.core.takeActions()) {
      progress = true;
      this.#perform(a);
    }
    for (const ev of this.core.takeEvents()) {
      progress = true;
      if (ev.type === "sampleNeighbors") this.#sample();
      this.#emit(ev);
    }
    return progress;
  }

  #perform(a: VipAction): void {
    const neighbors: readonly VipNeighbor[] = a.type === "acquire" ? this.core.neighbors() : [];
    const run = (): void | Promise<void> =>
      a.type === "acquire" ? this.driver.acquire(a.group, neighbors) : this.driver.release(a.group);
    const report = (error: unknown): void =>
      this.#emit({ type: "driverError", action: a.type, group: a.group.name, error });
    // A synchronous driver (dry run) acts at once; asynchronous operations on one group are
    // serialized in order, and different groups proceed side by side.
    const name = a.group.name;
    const prev = this.#chains.get(name);
    if (prev === undefined) {
      let r: void | Promise<void>;
      try {
        r = run();
      } catch (error) {
        report(error);
        return;
      }
      if (r === undefined) return;
      this.#track(name, r.catch(report));
      return;
    }
    this.#track(
      name,
      prev.then(() => Promise.resolve().then(run).catch(report)),
    );
  }

  #track(name: string, p: Promise<void>): void {
    const tail: Promise<void> = p.finally(() => {
      if (this.#chains.get(name) === tail) this.#chains.delete(name);
    });
    this.#chains.set(name, tail);
  }

  #sample(): void {
    const s = this.driver.sampleNeighbors;
    if (s === undefined) return;
    // after the address actions under way (an exchange asks for a sample as it raises the groups
    // it took over): a query must not compete with `ip addr add` for a busy host's CPU
    this.idle()
      .then(() => s.call(this.driver))
      .then((entries) => {
        if (entries.length > 0 && !this.#stopped)
          this.#run.input((now) => this.core.shareNeighbors(entries, now));
      })
      .catch((error) =>
        this.#emit({ type: "driverError", action: "acquire", group: "(neighbor sample)", error }),
      );
  }

  #emit(ev: VipNodeEvent): void {
    this.#options.onEvent?.(ev, this);
  }
}

/** A `NodeFactory` for the simulator: every (re)start builds a fresh VIP node (new member incarnation). */
export function vipFactory(options: VipNodeOptions | ((host: Host) => VipNodeOptions)): NodeFactory {
  return (host) => new VipNode(host, typeof options === "function" ? options(host) : options);
}
