/**
 * The wackamole-node daemon: a `VipNode` (`@spines-ts/vip`, which runs a `MembershipNode` of
 * `@spines-ts/membership` next to the VIP core) on one `@spines-ts/node-host` `UdpHost`: exactly the
 * composition the simulator proves (`vipFactory` on a netsim host), with the Linux address driver
 * or the dry-run one. Around it: the control socket, metrics, the track health check, hooks,
 * SIGHUP reloads and a bounded graceful stop.
 */
import { formatHostPort, type Metric, MetricsServer } from "@spines-ts/daemon-kit";
import { type MembershipEvent, profiles } from "@spines-ts/membership";
import { DiscoverySocket, UdpHost } from "@spines-ts/node-host";
import { CapacityError, ConfigError, type Logger, type NodeId } from "@spines-ts/primitives";
import {
  type AddressDriver,
  DryRunAddressDriver,
  parseVipGroups,
  type VipGroup,
  VipNode,
  type VipNodeEvent,
  type VipNodeOptions,
} from "@spines-ts/vip";
import { type CommandOptions, LinuxAddressDriver } from "@spines-ts/vip/linux";
import { decodeHeader, type VipNeighbor } from "@spines-ts/wire";
import type { KeySet } from "@spines-ts/wire/auth";
import { type BatchedResult, CommandPool } from "./command-worker.ts";
import type { LogLevel, WackConfig } from "./config.ts";
import { ControlError, ControlErrorCode, ControlServer } from "./control.ts";
import { HookRunner } from "./hooks.ts";
import { readKeyFile, sameKeys } from "./keyfile.ts";
import { LoopMonitor } from "./loop-monitor.ts";
import { HealthTracker } from "./track.ts";

/**
 * How long a graceful stop waits for the address releases (each `ip addr del` is a process; a
 * loaded machine with many VIPs needs seconds), and then for the down hooks, before it gives up.
 */
export const STOP_RELEASE_MS = 30_000;
export const STOP_HOOKS_MS = 5000;
/** A stop that has not finished after this long exits anyway (status 1). */
export const STOP_HARD_MS = STOP_RELEASE_MS + STOP_HOOKS_MS + 10_000;
/** After the membership service was lost (not by our own fail), rejoin after this long. */
const REJOIN_AFTER_MS = 1000;

export interface DaemonCounters {
  views: number;
  acquisitions: number;
  releases: number;
  failovers: number;
  driverErrors: number;
  multicastErrors: number;
  tableMismatches: number;
  badMessages: number;
  notifyAddresses: number;
  notifyTargets: number;
  notifyNeighbors: number;
  rebuilds: number;
  reloads: number;
  reloadErrors: number;
}

export interface StatusResult {
  readonly id: NodeId;
  readonly group: string;
  readonly view: { readonly id: string; readonly members: readonly NodeId[] } | null;
  readonly phase: string;
  readonly mature: boolean;
  readonly settled: boolean;
  readonly held: readonly string[];
  readonly owners: Readonly<Record<string, NodeId>>;
  readonly healthy: boolean;
  readonly adminFailed: boolean;
  readonly profile: string;
  readonly driver: string;
  readonly auth: boolean;
  /** The key ids the membership layer holds now, the signing key first (empty without auth). */
  readonly authKeys: readonly number[];
  /**
   * The running frame senders of announcements ("4:eth0": gratuitous ARP on eth0, "6:eth0":
   * unsolicited NA); empty without socat (then announcements are commands). docs/wackamole-node.md §1.1.
   */
  readonly announceSenders: readonly string[];
  readonly counters: Readonly<Record<string, number>>;
}

export interface ListEntry {
  readonly group: string;
  readonly owner: NodeId;
  readonly addresses: readonly string[];
  readonly local: boolean;
}

export interface DaemonOptions {
  readonly config: WackConfig;
  /** The membership keys (read from `config.auth.keyFile` when not given). */
  readonly keys?: KeySet;
  readonly log: Logger;
  readonly setLogLevel?: (level: LogLevel) => void;
}

function addressText(g: VipGroup): string[] {
  return g.addresses.map((a) => `${a.iface} ${a.cidr}`);
}

/**
 * The address driver the VipNode sees: forwards to the real one (swapped on a reload of the
 * notify/announce settings), and after each completed acquire or release logs it, counts it and
 * runs the hooks.
 */
class DaemonDriver implements AddressDriver {
  inner: AddressDriver;
  readonly #d: WackamoleDaemon;

  constructor(inner: AddressDriver, d: WackamoleDaemon) {
    this.inner = inner;
    this.#d = d;
  }

  acquire(group: VipGroup, neighbors: readonly VipNeighbor[]): void | Promise<void> {
    const r = this.inner.acquire(group, neighbors);
    if (r instanceof Promise) return r.then(() => this.#d._done("up", group, neighbors));
    this.#d._done("up", group, neighbors);
  }

  release(group: VipGroup): void | Promise<void> {
    // released already by the daemon's stop (or rebuild), before it left the group (and not
    // acquired since): nothing left to do. Running the `ip addr del`s again would only compete for
    // the CPU with the member taking over, at the moment it raises the addresses.
    if (this.#d._preReleased.delete(group.name)) return;
    const r = this.inner.release(group);
    if (r instanceof Promise) return r.then(() => this.#d._done("down", group, []));
    this.#d._done("down", group, []);
  }

  sampleNeighbors(): readonly VipNeighbor[] | Promise<readonly VipNeighbor[]> {
    return this.inner.sampleNeighbors?.() ?? [];
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class WackamoleDaemon {
  readonly host: UdpHost;
  readonly discovery: DiscoverySocket | undefined;
  readonly counters: DaemonCounters = {
    views: 0,
    acquisitions: 0,
    releases: 0,
    failovers: 0,
    driverErrors: 0,
    multicastErrors: 0,
    tableMismatches: 0,
    badMessages: 0,
    notifyAddresses: 0,
    notifyTargets: 0,
    notifyNeighbors: 0,
    rebuilds: 0,
    reloads: 0,
    reloadErrors: 0,
  };
  #config: WackConfig;
  #keys: KeySet | undefined;
  /** The membership `auth` option the running VIP node was built with (its keys are swapped live). */
  #auth: { keys: KeySet; readonly counterStart: number } | undefined;
  readonly #log: Logger;
  readonly #setLogLevel: ((l: LogLevel) => void) | undefined;
  readonly #driver: DaemonDriver;
  #vip: VipNode;
  readonly #hooks: HookRunner;
  #tracker: HealthTracker | undefined;
  readonly #loop: LoopMonitor;
  /** Every command (driver, track, hooks) starts from this worker thread, off the membership loop. */
  readonly #runner: CommandPool;
  #control: ControlServer | undefined;
  #metrics: MetricsServer | undefined;
  #metricsPort: number | undefined;
  #adminFailed = false;
  #out = false;
  /** The running VipNode's settings differ from the config: rebuild it when it next (re)joins. */
  #stale = false;
  #rejoinTimer: ReturnType<typeof setTimeout> | undefined;
  /** Last agreed owner of each group (for counting fail-overs). */
  #owners: readonly NodeId[] = [];
  /** Members of the view of the last exchange (to tell a merge). */
  #lastMembers: readonly NodeId[] = [];
  #stopping: Promise<void> | undefined;
  #applying: Promise<void> = Promise.resolve();
  /** Groups `#releaseFirst` released, not acquired since (the VIP node's own release of them is quiet). */
  readonly _preReleased = new Set<string>();
  #rebuilding: Promise<void> | undefined;

  private constructor(
    host: UdpHost,
    discovery: DiscoverySocket | undefined,
    opts: DaemonOptions,
    inner: AddressDriver,
    commands: CommandPool,
  ) {
    this.host = host;
    this.discovery = discovery;
    this.#config = opts.config;
    this.#keys = opts.keys;
    this.#log = opts.log;
    this.#setLogLevel = opts.setLogLevel;
    this.#driver = new DaemonDriver(inner, this);
    this.#runner = commands;
    this.#hooks = new HookRunner(opts.config.hooks, opts.log.child({ part: "hooks" }), (c, t, e) =>
      commands.shell(c, t, e),
    );
    this.#loop = new LoopMonitor(opts.log.child({ part: "loop" }));
    this.#vip = this.#newVip();
  }

  /** Opens the sockets, joins the group, starts control, metrics and the health check. */
  static async start(opts: DaemonOptions): Promise<WackamoleDaemon> {
    const c = opts.config;
    const log = opts.log;
    const keys = opts.keys ?? (c.auth !== undefined ? readKeyFile(c.auth.keyFile) : undefined);
    opts = { ...opts, ...(keys ? { keys } : {}) };
    const commands = new CommandPool();
    const inner = WackamoleDaemon.#makeDriver(c, log, commands);
    if (inner instanceof LinuxAddressDriver) {
      try {
        const removed = await inner.cleanup();
        if (removed.length > 0) log.warn({ removed }, "removed addresses left by an earlier run");
      } catch (e) {
        log.error({ err: String(e) }, "could not clean up addresses of an earlier run");
      }
      // interface options now, not in the first fail-over (acquire retries them if this fails)
      try {
        await inner.prepare(parseVipGroups(c.vips.groups));
      } catch (e) {
        log.warn({ err: String(e) }, "could not prepare the interfaces (retried on the first acquire)");
      }
      commands.prepareAnnouncements(vipInterfaces(c));
    }
    const host = await UdpHost.open({
      id: c.id,
      listen: { address: c.bind.host, port: c.bind.port },
      peers: c.peers.map((p) => [p.id, { address: p.host, port: p.port }] as const),
      log: log.child({ part: "udp" }),
    }).catch(async (e: unknown) => {
      await commands.close();
      throw e;
    });
    let disc: DiscoverySocket | undefined;
    let d: WackamoleDaemon | undefined;
    try {
      if (c.discovery !== undefined)
        disc = await DiscoverySocket.open({
          group: c.discovery.address,
          port: c.discovery.port,
          via: host,
          ...(c.discovery.interface !== undefined ? { interface: c.discovery.interface } : {}),
          ...(c.discovery.ttl !== undefined ? { ttl: c.discovery.ttl } : {}),
          log,
        });
      d = new WackamoleDaemon(host, disc, opts, inner, commands);
      const daemon = d;
      // a datagram from an endpoint we do not know: a discovered peer, or one restarted on a new port
      host.onUnknownPeer = (data) => daemon.#learn(data);
      if (disc)
        disc.onMessage = (data, from) => {
          const id = daemon.#learn(data, from);
          if (id !== undefined) daemon.#vip.receive(id, data);
        };
      d.#loop.start();
      if (c.track !== undefined) {
        d.#tracker = new HealthTracker(
          c.track,
          log.child({ part: "track" }),
          (h) => daemon.#onHealth(h),
          (c, t, e) => daemon.#runner.shell(c, t, e),
        );
        d.#tracker.start();
      }
      d.#control = new ControlServer({
        commands: d.#commands(),
        log: log.child({ part: "control" }),
        maxConnections: c.limits.maxControlConnections,
      });
      await d.#control.listen(c.control);
      if (c.metrics !== undefined) {
        d.#metrics = new MetricsServer(() => daemon.metrics());
        d.#metricsPort = await d.#metrics.listen(c.metrics.host, c.metrics.port);
      }
    } catch (e) {
      if (d !== undefined) await d.stop();
      else {
        await disc?.close();
        await host.close();
        await commands.close();
      }
      throw e;
    }
    log.info(
      {
        id: c.id,
        group: c.group,
        bind: formatHostPort({ host: c.bind.host, port: host.address().port }),
        peers: c.peers.map((p) => p.id),
        profile: c.profile,
        driver: c.driver,
        groups: c.vips.groups.length,
        control: c.control,
        metrics: d.#metricsPort === undefined ? undefined : `${c.metrics?.host}:${d.#metricsPort}`,
        auth: c.auth !== undefined,
      },
      "wackamole-node started",
    );
    return d;
  }

  static #makeDriver(c: WackConfig, log: Logger, commands: CommandPool): AddressDriver {
    if (c.driver === "dry-run") return new DryRunAddressDriver(1000);
    const dlog = log.child({ part: "driver" });
    return new LinuxAddressDriver({
      // each command's duration at debug level (a slow fail-over is usually slow commands); the
      // options (stillWanted, followUps) go through
      runner: Object.assign(
        (argv: readonly string[], options?: CommandOptions) => {
          const t0 = performance.now();
          return commands.runner(argv, options).then((r) => {
            dlog.debug(
              {
                argv: argv.join(" "),
                code: r.code,
                ms: Math.round(performance.now() - t0),
                ...(r.skipped === true ? { skipped: true } : {}),
                ...(options?.followUps !== undefined ? { followUps: options.followUps.length } : {}),
                // batched address changes: the gathering turn, and `ip` plus our noticing its end
                ...("runMs" in r
                  ? {
                      waitMs: (r as BatchedResult).waitMs,
                      runMs: (r as BatchedResult).runMs,
                      spare: (r as BatchedResult).spare,
                    }
                  : {}),
              },
              "command",
            );
            return r;
          });
        },
        { followUps: commands.runner.followUps === true },
      ),
      announce: c.announce,
      notify: c.notify.map((n) => ({
        iface: n.iface,
        targets: n.address,
        ...(n.throttle !== undefined ? { throttle: n.throttle } : {}),
      })),
      onError: (err) => dlog.warn({ err: err.message }, "announcement failed"),
    });
  }

  get config(): WackConfig {
    return this.#config;
  }

  get vip(): VipNode {
    return this.#vip;
  }

  /** The UDP port of the membership socket. */
  get port(): number {
    return this.host.address().port;
  }

  get metricsPort(): number | undefined {
    return this.#metricsPort;
  }

  get healthy(): boolean {
    return this.#tracker?.healthy ?? true;
  }

  #newVip(): VipNode {
    const c = this.#config;
    const disc = this.discovery;
    const auth = this.#keys ? authOption(this.#keys) : undefined;
    this.#auth = auth;
    const options: VipNodeOptions = {
      vip: {
        groups: c.vips.groups,
        prefer: c.vips.prefer,
        matureMs: c.vips.matureMs,
        holdOffMs: c.vips.holdOffMs,
        balance: c.vips.balance,
        neighborShareMs: c.vips.neighborShareMs,
        log: this.#log.child({ part: "vip" }),
      },
      membership: {
        group: c.group,
        peers: c.peers.map((p) => p.id),
        profile: c.profile,
        log: this.#log.child({ part: "membership" }),
        ...(disc ? { announce: true, onAnnounce: (data: Uint8Array) => disc.announce(data) } : {}),
        ...(auth ? { auth } : {}),
      },
      driver: this.#driver,
      onEvent: (ev) => this.#onVipEvent(ev),
      onMembership: (ev) => this.#onMembership(ev),
    };
    const vip = new VipNode(this.host, options);
    this.host.attach(vip);
    this.#owners = [];
    this.#lastMembers = [];
    return vip;
  }

  // ------------------------------------------------------------------ events

  #view(): { id: string; members: readonly NodeId[] } | null {
    const v = this.#vip.membership.core.view;
    return v === undefined ? null : { id: v.key, members: v.members };
  }

  #onMembership(ev: MembershipEvent): void {
    try {
      if (ev.type === "view") {
        this.counters.views++;
        this.#log.info({ view: ev.view.key, members: ev.view.members }, "view installed");
      } else if (ev.type === "left") {
        this.#log.info("left the membership group");
      }
    } catch {
      // logging never stops the protocol
    }
  }

  #onVipEvent(ev: VipNodeEvent): void {
    const log = this.#log;
    switch (ev.type) {
      case "allocated": {
        const view = this.#vip.membership.core.view;
        const members = view?.members ?? [];
        const groups = this.#vip.core.groups;
        ev.owners.forEach((o, g) => {
          const prev = this.#owners[g];
          if (
            o === this.host.id &&
            prev !== undefined &&
            prev !== 0 &&
            prev !== o &&
            !members.includes(prev)
          ) {
            this.counters.failovers++;
            log.info(
              { group: groups[g]?.name, from: prev, view: ev.view },
              "took over a group from a lost member",
            );
          }
        });
        // A view with members the last one lacked may be a merge: the other component's holder of
        // a group we keep announced it too, and clients point at whichever spoke last. Announce
        // what we keep again (gratuitous only; acquires announce by themselves).
        const inner = this.#driver.inner;
        const joined = members.some((m) => !this.#lastMembers.includes(m));
        if (ev.reason === "exchange" && joined && inner instanceof LinuxAddressDriver)
          ev.owners.forEach((o, g) => {
            const group = groups[g];
            if (o === this.host.id && this.#owners[g] === o && group !== undefined) inner.reannounce(group);
          });
        if (ev.reason === "exchange") this.#lastMembers = members;
        this.#owners = ev.owners;
        log.debug(
          {
            view: ev.view,
            reason: ev.reason,
            ...(ev.carried ? { carried: true } : {}),
            owners: Object.fromEntries(ev.owners.map((o, g) => [groups[g]?.name, o])),
            moves: ev.moves.length,
          },
          "allocation",
        );
        return;
      }
      case "releasedAll":
        log.info({ reason: ev.reason }, "released every group");
        if (ev.reason === "membershipLost" && !this.#out && this.#stopping === undefined)
          this.#scheduleRejoin();
        return;
      case "tableMismatch":
        this.counters.tableMismatches++;
        log.error(
          { member: ev.member, theirs: ev.theirs, ours: ev.ours },
          "a member has a different VIP table; its claims are ignored",
        );
        return;
      case "badMessage":
        this.counters.badMessages++;
        log.debug({ from: ev.from, reason: ev.reason }, "bad VIP message");
        return;
      case "driverError":
        this.counters.driverErrors++;
        log.error(
          {
            action: ev.action,
            group: ev.group,
            err: ev.error instanceof Error ? ev.error.message : String(ev.error),
          },
          "address driver failed",
        );
        return;
      case "multicastError":
        this.counters.multicastErrors++;
        log.warn({ err: String(ev.error) }, "VIP multicast failed");
        return;
      case "neighbors":
        log.debug({ from: ev.from, entries: ev.entries.length }, "neighbours learned");
        return;
      case "sampleNeighbors":
        return;
    }
  }

  /** Called by the driver wrapper after an acquire or release completed. */
  _done(event: "up" | "down", group: VipGroup, neighbors: readonly VipNeighbor[]): void {
    if (event === "up") this._preReleased.delete(group.name);
    const view = this.#view();
    const addresses = addressText(group);
    if (event === "up") {
      this.counters.acquisitions++;
      this.counters.notifyAddresses += group.addresses.length;
      this.counters.notifyNeighbors += neighbors.length;
      for (const a of group.addresses)
        this.counters.notifyTargets += this.#config.notify.filter((n) => n.iface === a.iface).length;
      this.#log.info(
        { group: group.name, addresses, view: view?.id, members: view?.members },
        "vip acquired",
      );
    } else {
      this.counters.releases++;
      this.#log.info(
        { group: group.name, addresses, view: view?.id, members: view?.members },
        "vip released",
      );
    }
    this.#hooks.run(event, {
      WACK_GROUP: group.name,
      WACK_ADDRESSES: group.addresses.map((a) => a.cidr).join(" "),
      WACK_INTERFACES: [...new Set(group.addresses.map((a) => a.iface))].join(" "),
      WACK_NODE_ID: String(this.host.id),
      WACK_VIEW: view?.id ?? "",
      WACK_DRY_RUN: this.#config.driver === "dry-run" ? "1" : "0",
    });
  }

  // ------------------------------------------------------------------ fail / succeed / health

  #onHealth(healthy: boolean): void {
    this.#log.info({ healthy }, healthy ? "healthy again: taking part" : "unhealthy: giving up every VIP");
    this.#apply();
  }

  /**
   * Brings the VipNode's participation in line with the admin flag and the health check. Steps run
   * one at a time; going out releases every VIP before leaving the group (as a stop does).
   */
  #apply(): void {
    this.#applying = this.#applying
      .then(() => this.#applyNow())
      .catch((e) => this.#log.error({ err: String(e) }, "could not change participation"));
  }

  async #applyNow(): Promise<void> {
    if (this.#stopping !== undefined || this.#rebuilding !== undefined) return;
    const wantOut = this.#adminFailed || !this.healthy;
    if (wantOut && !this.#out) {
      this.#out = true;
      clearTimeout(this.#rejoinTimer);
      await this.#releaseFirst();
      if (this.#stopping === undefined) this.#vip.fail();
    } else if (!wantOut && this.#out) {
      this.#out = false;
      if (this.#stale) await this.#rebuild();
      else this.#vip.rejoin();
    }
  }

  #scheduleRejoin(): void {
    clearTimeout(this.#rejoinTimer);
    this.#rejoinTimer = setTimeout(() => {
      if (this.#out || this.#stopping !== undefined || this.#rebuilding !== undefined) return;
      if (this.#vip.core.phase !== "idle") return;
      this.#log.info("rejoining the membership group");
      this.#vip.rejoin();
    }, REJOIN_AFTER_MS);
    this.#rejoinTimer.unref();
  }

  fail(): { adminFailed: boolean; held: string[] } {
    this.#adminFailed = true;
    this.#log.info("fail requested: giving up every VIP and leaving the group");
    this.#apply();
    return { adminFailed: true, held: this.#held() };
  }

  succeed(): { adminFailed: boolean; healthy: boolean; joining: boolean } {
    this.#adminFailed = false;
    this.#log.info("succeed requested");
    this.#apply();
    return { adminFailed: false, healthy: this.healthy, joining: this.healthy };
  }

  balance(): { requested: boolean } {
    if (this.#out)
      throw new ControlError("ERR_NOT_RUNNING", "this node is out of the cluster (failed or unhealthy)");
    const ok = this.#vip.balanceNow();
    if (!ok) throw new ControlError("ERR_NOT_RUNNING", "no agreed view yet: nothing to balance");
    return { requested: true };
  }

  #held(): string[] {
    const groups = this.#vip.core.groups;
    return [...this.#vip.core.held].sort((a, b) => a - b).map((g) => groups[g]?.name ?? String(g));
  }

  status(): StatusResult {
    const core = this.#vip.core;
    const snap = core.snapshot();
    const owners: Record<string, NodeId> = {};
    core.groups.forEach((g, i) => {
      owners[g.name] = snap.owners?.[i] ?? 0;
    });
    const c = this.#config;
    return {
      id: this.host.id,
      group: c.group,
      view: this.#view(),
      phase: snap.phase,
      mature: snap.mature,
      settled: snap.settled,
      held: this.#held(),
      owners,
      healthy: this.healthy,
      adminFailed: this.#adminFailed,
      profile: c.profile,
      driver: c.driver,
      auth: c.auth !== undefined,
      authKeys: this.#vip.membership.auth?.keys.keys.map((k) => k.id) ?? [],
      announceSenders: this.#runner.frameSenders,
      counters: {
        ...this.counters,
        trackChecks: this.#tracker?.stats.checks ?? 0,
        trackFailures: this.#tracker?.stats.failures ?? 0,
        hooksStarted: this.#hooks.stats.started,
        hooksFailed: this.#hooks.stats.failed,
        hooksDropped: this.#hooks.stats.dropped,
        controlRequests: this.#control?.stats.requests ?? 0,
        controlErrors: this.#control?.stats.errors ?? 0,
        rxPackets: this.host.stats.rxPackets,
        txPackets: this.host.stats.txPackets,
        badPackets: this.#vip.membership.core.stats.badPackets,
        commands: this.#runner.stats.commands,
        commandsRefused: this.#runner.stats.refused,
        commandsSkipped: this.#runner.stats.skipped,
        ipBatches: this.#runner.batchStats.ipBatches,
        ipSpareBatches: this.#runner.batchStats.spareBatches,
        announceFrames: this.#runner.frameStats.frames,
        announceFallbacks: this.#runner.frameStats.fallbacks,
        loopStalls: this.#loop.stats.stalls,
        maxLoopStallMs: this.#loop.stats.maxStallMs,
        membershipStalls: this.#vip.membership.core.stats.stalls,
        proposalsStarted: this.#vip.membership.core.stats.proposalsStarted,
        installsRefused: this.#vip.membership.core.stats.installsRefused,
        authDropped: ((a) =>
          a === undefined ? 0 : a.unsigned + a.unknownKey + a.badMac + a.replay + a.staleIncarnation)(
          this.#vip.membership.authStats(),
        ),
      },
    };
  }

  list(): ListEntry[] {
    const core = this.#vip.core;
    const owners = core.snapshot().owners;
    return core.groups.map((g) => ({
      group: g.name,
      owner: owners?.[g.index] ?? 0,
      addresses: addressText(g),
      local: core.held.has(g.index),
    }));
  }

  #commands(): Record<string, (args: Record<string, unknown>) => unknown> {
    const noArgs =
      (fn: () => unknown) =>
      (args: Record<string, unknown>): unknown => {
        for (const k of Object.keys(args))
          if (k !== "id" && k !== "cmd")
            throw new ControlError(
              ControlErrorCode.BadArgument,
              `unexpected argument ${JSON.stringify(k.slice(0, 64))}`,
            );
        return fn();
      };
    return {
      status: noArgs(() => this.status()),
      list: noArgs(() => this.list()),
      fail: noArgs(() => this.fail()),
      succeed: noArgs(() => this.succeed()),
      balance: noArgs(() => this.balance()),
    };
  }

  // ------------------------------------------------------------------ discovery

  #learn(data: Uint8Array, from?: { address: string; port: number }): NodeId | undefined {
    const member = this.#vip.membership;
    let sender: NodeId;
    try {
      sender = decodeHeader(data).sender;
    } catch {
      member.core.stats.badPackets++;
      return undefined;
    }
    if (sender === this.host.id) return undefined;
    // with auth, only a key holder's frame teaches a peer (the replay check follows in receive)
    if (member.auth !== undefined && !member.auth.keys.verify(data).ok) return undefined;
    if (!member.core.addPeer(sender)) return undefined;
    if (from !== undefined) {
      const known = this.host.peer(sender);
      if (known === undefined || known.address !== from.address || known.port !== from.port) {
        try {
          this.host.setPeer(sender, from);
        } catch (e) {
          if (e instanceof CapacityError) return undefined;
          throw e;
        }
      }
    }
    return sender;
  }

  // ------------------------------------------------------------------ reload

  /**
   * Applies a new configuration (SIGHUP). id and bind changes are refused (ConfigError); control,
   * metrics, discovery and driver changes need a restart (logged, not applied). A changed VIP
   * table, group, profile or peer list rebuilds the VIP node (it releases its groups, leaves, and
   * joins again as a new member). Returns what was applied.
   */
  async reload(next: WackConfig): Promise<string[]> {
    const cur = this.#config;
    if (next.id !== cur.id)
      throw new ConfigError(
        next.configFile ?? "config",
        "id",
        `the running id ${cur.id} (restart to change it)`,
        next.id,
      );
    if (next.bind.host !== cur.bind.host || next.bind.port !== cur.bind.port)
      throw new ConfigError(
        next.configFile ?? "config",
        "bind",
        `the running ${formatHostPort(cur.bind)} (restart to change it)`,
        formatHostPort(next.bind),
      );
    const nextKeys = next.auth !== undefined ? readKeyFile(next.auth.keyFile) : undefined;
    const keysChanged = !sameKeys(nextKeys, this.#keys);
    // auth turned on or off needs a new member; new keys for a signing member are swapped live
    const authToggled = (nextKeys === undefined) !== (this.#keys === undefined);
    const applied: string[] = [];
    const restart: string[] = [];
    if (next.control !== cur.control) restart.push("control");
    if (!sameJson(next.metrics, cur.metrics)) restart.push("metrics");
    if (!sameJson(next.discovery, cur.discovery)) restart.push("discovery");
    if (next.driver !== cur.driver) restart.push("driver");
    if (!sameJson(next.limits, cur.limits)) restart.push("limits");
    // keep what cannot change live
    const eff: WackConfig = {
      ...next,
      control: cur.control,
      metrics: cur.metrics,
      discovery: cur.discovery,
      driver: cur.driver,
      limits: cur.limits,
    };
    if (eff.logLevel !== cur.logLevel) {
      this.#setLogLevel?.(eff.logLevel);
      applied.push("log.level");
    }
    if (!sameJson(eff.hooks, cur.hooks)) {
      this.#hooks.update(eff.hooks);
      applied.push("hooks");
    }
    if (!sameJson(eff.notify, cur.notify) || !sameJson(eff.announce, cur.announce)) {
      const old = this.#driver.inner;
      if (old instanceof LinuxAddressDriver) {
        this.#driver.inner = WackamoleDaemon.#makeDriver(eff, this.#log, this.#runner);
        old.close();
      }
      applied.push("notify");
    }
    const rebuild =
      !sameJson(eff.vips, cur.vips) ||
      eff.group !== cur.group ||
      eff.profile !== cur.profile ||
      !sameJson(eff.peers, cur.peers) ||
      authToggled;
    const trackChanged = !sameJson(eff.track, cur.track);
    if (!sameJson(eff.vips, cur.vips) && eff.driver === "linux")
      this.#runner.prepareAnnouncements(vipInterfaces(eff));
    this.#config = eff;
    this.#keys = nextKeys;
    if (keysChanged && !authToggled && nextKeys !== undefined && this.#auth !== undefined) {
      this.#auth.keys = nextKeys;
      this.#vip.membership.auth?.setKeys(nextKeys);
    }
    if (keysChanged) applied.push("auth");
    if (trackChanged) {
      if (eff.track === undefined) {
        this.#tracker?.stop();
        this.#tracker = undefined;
      } else if (this.#tracker === undefined) {
        this.#tracker = new HealthTracker(
          eff.track,
          this.#log.child({ part: "track" }),
          (h) => this.#onHealth(h),
          (c, t, e) => this.#runner.shell(c, t, e),
        );
        this.#tracker.start();
      } else this.#tracker.update(eff.track);
      applied.push("track");
    }
    if (rebuild) {
      for (const p of eff.peers) {
        try {
          this.host.setPeer(p.id, { address: p.host, port: p.port });
        } catch (e) {
          this.#log.warn({ peer: p.id, err: String(e) }, "peer not added");
        }
      }
      applied.push("vips/membership");
      if (this.#out) this.#stale = true;
      else await this.#rebuild();
    }
    this.#apply();
    this.counters.reloads++;
    if (restart.length > 0)
      this.#log.warn({ keys: restart }, "configuration changes that need a restart were not applied");
    this.#log.info({ applied }, "configuration reloaded");
    return applied;
  }

  /** Replaces the VipNode: the old one releases everything and leaves, then a new one joins. */
  #rebuild(): Promise<void> {
    this.#rebuilding ??= (async () => {
      this.counters.rebuilds++;
      const old = this.#vip;
      await this.#releaseFirst();
      old.stop();
      await withTimeout(old.idle(), STOP_RELEASE_MS);
      this.#stale = false;
      if (this.#stopping === undefined) this.#vip = this.#newVip();
    })().finally(() => {
      this.#rebuilding = undefined;
      // a fail, succeed or health change that arrived meanwhile
      this.#apply();
    });
    return this.#rebuilding;
  }

  /**
   * Releases every held group (addresses removed, logged, hooks run) while still a member, so that
   * nobody else acquires an address before it is gone here; the VIP node's stop then leaves the
   * group and the others take over at once. Bounded by STOP_RELEASE_MS.
   */
  async #releaseFirst(): Promise<void> {
    await withTimeout(this.#vip.idle(), STOP_RELEASE_MS);
    const core = this.#vip.core;
    const groups = [...core.held]
      .sort((a, b) => a - b)
      .map((i) => core.groups[i])
      .filter((g): g is VipGroup => g !== undefined);
    const one = (g: VipGroup): Promise<void> =>
      Promise.resolve()
        .then(() => this.#driver.release(g))
        .then(
          () => {
            this._preReleased.add(g.name);
          },
          (e) => {
            this.counters.driverErrors++;
            this.#log.error(
              { action: "release", group: g.name, err: e instanceof Error ? e.message : String(e) },
              "address driver failed",
            );
          },
        );
    const done = await withTimeout(Promise.all(groups.map(one)), STOP_RELEASE_MS);
    if (!done) this.#log.error({ timeoutMs: STOP_RELEASE_MS }, "address releases did not finish in time");
  }

  // ------------------------------------------------------------------ metrics

  metrics(): Metric[] {
    const s = this.status();
    const c = this.counters;
    const counter = (name: string, help: string, value: number): Metric => ({
      name,
      help,
      type: "counter",
      samples: [{ value }],
    });
    const gauge = (name: string, help: string, value: number): Metric => ({
      name,
      help,
      type: "gauge",
      samples: [{ value }],
    });
    return [
      gauge(
        "wackamole_view_members",
        "Members of the current agreed view (0: none)",
        s.view?.members.length ?? 0,
      ),
      counter("wackamole_views_total", "Membership views installed", c.views),
      gauge("wackamole_groups", "VIP groups in the table", this.#vip.core.groups.length),
      gauge("wackamole_groups_held", "VIP groups this node holds", s.held.length),
      counter("wackamole_acquisitions_total", "VIP groups acquired (addresses raised)", c.acquisitions),
      counter("wackamole_releases_total", "VIP groups released (addresses removed)", c.releases),
      counter(
        "wackamole_failovers_total",
        "Groups this node took over from a member that left the view",
        c.failovers,
      ),
      {
        name: "wackamole_notifications_total",
        help: "Announcements started on acquire: own addresses, configured notify targets, shared neighbours",
        type: "counter",
        samples: [
          { labels: { kind: "address" }, value: c.notifyAddresses },
          { labels: { kind: "notify" }, value: c.notifyTargets },
          { labels: { kind: "neighbor" }, value: c.notifyNeighbors },
        ],
      },
      gauge(
        "wackamole_track_healthy",
        "1 while the track check passes (or none is configured)",
        s.healthy ? 1 : 0,
      ),
      counter("wackamole_track_checks_total", "Track checks run", this.#tracker?.stats.checks ?? 0),
      counter(
        "wackamole_track_failures_total",
        "Track checks that failed",
        this.#tracker?.stats.failures ?? 0,
      ),
      gauge("wackamole_admin_failed", "1 after wackactl fail, until wackactl succeed", s.adminFailed ? 1 : 0),
      counter("wackamole_driver_errors_total", "Address driver operations that failed", c.driverErrors),
      counter(
        "wackamole_table_mismatches_total",
        "State messages from members with a different VIP table",
        c.tableMismatches,
      ),
      {
        name: "wackamole_hooks_total",
        help: "Hook runs by outcome",
        type: "counter",
        samples: [
          { labels: { result: "ok" }, value: this.#hooks.stats.succeeded },
          { labels: { result: "failed" }, value: this.#hooks.stats.failed },
          { labels: { result: "dropped" }, value: this.#hooks.stats.dropped },
        ],
      },
      counter("wackamole_reloads_total", "Configuration reloads applied", c.reloads),
      counter("wackamole_udp_rx_packets_total", "Membership datagrams received", this.host.stats.rxPackets),
      counter("wackamole_udp_tx_packets_total", "Membership datagrams sent", this.host.stats.txPackets),
      counter(
        "wackamole_membership_bad_packets_total",
        "Membership datagrams rejected",
        this.#vip.membership.core.stats.badPackets,
      ),
      ...this.#authMetrics(),
    ];
  }

  #authMetrics(): Metric[] {
    const a = this.#vip.membership.authStats();
    if (a === undefined) return [];
    return [
      {
        name: "wackamole_auth_accepted_total",
        help: "Membership frames that verified (this member incarnation)",
        type: "counter",
        samples: [{ value: a.accepted }],
      },
      {
        name: "wackamole_auth_dropped_total",
        help: "Membership frames dropped by authentication (this member incarnation)",
        type: "counter",
        samples: [
          { labels: { reason: "unsigned" }, value: a.unsigned },
          { labels: { reason: "unknown-key" }, value: a.unknownKey },
          { labels: { reason: "bad-mac" }, value: a.badMac },
          { labels: { reason: "replay" }, value: a.replay },
          { labels: { reason: "stale-incarnation" }, value: a.staleIncarnation },
        ],
      },
    ];
  }

  // ------------------------------------------------------------------ stop

  /** Releases every VIP (addresses removed, down hooks run), leaves the group, closes everything. Bounded. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#rejoinTimer);
      this.#loop.stop();
      this.#tracker?.stop();
      await this.#control?.close();
      await withTimeout(this.#applying, STOP_RELEASE_MS);
      if (this.#rebuilding !== undefined) await this.#rebuilding;
      await this.#releaseFirst();
      this.#vip.stop();
      const released = await withTimeout(this.#vip.idle(), STOP_RELEASE_MS);
      if (!released)
        this.#log.error({ timeoutMs: STOP_RELEASE_MS }, "address releases did not finish in time");
      await withTimeout(this.#hooks.idle(), STOP_HOOKS_MS);
      const inner = this.#driver.inner;
      if (inner instanceof LinuxAddressDriver) inner.close();
      await this.#metrics?.close();
      // let the leave datagrams go out before closing the socket
      await new Promise((r) => setImmediate(r));
      await this.discovery?.close();
      await this.host.close();
      await this.#runner.close();
      this.#log.info({ held: this.#held() }, "wackamole-node stopped");
    })();
    return this.#stopping;
  }
}

/**
 * The membership `auth` option. Its `counterStart` is read each time a member is built (the VIP
 * node builds a new member on every rejoin): a wall-clock reading in microseconds, so every new
 * incarnation's frame counters lie above every counter an earlier one signed, as the receivers'
 * replay guard requires of a new incarnation.
 */
function authOption(keys: KeySet): { keys: KeySet; readonly counterStart: number } {
  return {
    keys,
    get counterStart() {
      return Date.now() * 1000;
    },
  };
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
async function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((r) => {
    t = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** Timing of the membership profiles (for docs and status). */
export const PROFILE_TIMING = profiles;

/** The (interface, family) pairs of the configured VIPs: where announcements go out. */
function vipInterfaces(c: WackConfig): { iface: string; family: 4 | 6 }[] {
  const seen = new Map<string, { iface: string; family: 4 | 6 }>();
  for (const g of parseVipGroups(c.vips.groups))
    for (const a of g.addresses) seen.set(`${a.family}:${a.iface}`, { iface: a.iface, family: a.family });
  return [...seen.values()];
}
