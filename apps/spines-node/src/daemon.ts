/**
 * The spines-node daemon: one UdpHost running one `OverlayNode` (links, routing, sessions: the
 * composition the overlay netsim sweeps prove, with `DAEMON_DEFAULTS` under the configuration), the
 * receive-side link emulator in front of it, and the three local interfaces (control, clients,
 * metrics). Everything here is wiring and presentation.
 */

import { randomBytes } from "node:crypto";
import { readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import {
  argNumber,
  ControlError,
  ControlErrorCode,
  ControlServer,
  type Metric,
  MetricsServer,
} from "@spines-ts/daemon-kit";
import { UdpHost } from "@spines-ts/node-host";
import { DAEMON_DEFAULTS, type LinkStatus, OverlayNode } from "@spines-ts/overlay";
import { type Logger, type NodeId, SpinesError } from "@spines-ts/primitives";
import type { KeySet } from "@spines-ts/wire/auth";
import { formatEndpoint } from "./address.ts";
import { type ClientOverlay, ClientServer } from "./client-server.ts";
import { ClientSessions } from "./client-sessions.ts";
import { type DaemonConfig, readKeyFile, VERSION } from "./config.ts";
import { LinkEmulator } from "./emulation.ts";
import { checkEmulation, type EmulationParams } from "./emulation-params.ts";
import { MAX_TRACE_CAPACITY, PacketTrace, TraceStage } from "./trace.ts";

/** Longest one step of `stop()` may take before the next runs anyway. */
export const STOP_STEP_MS = 2000;

export interface DaemonOptions {
  readonly config: DaemonConfig;
  readonly log: Logger;
  /** Applies a new log level (SIGHUP, control `log-level`). */
  readonly setLogLevel?: (level: DaemonConfig["logLevel"]) => void;
}

/** A neighbour's liveness as the control socket shows it: the node's view plus its UDP endpoint. */
export interface NeighborView {
  readonly id: NodeId;
  readonly endpoint: string;
  readonly state: string;
  readonly lastHeardMsAgo: number | null;
  readonly rxFrames: number;
  readonly txFrames: number;
}

export class SpinesDaemon {
  readonly log: Logger;
  readonly host: UdpHost;
  readonly emulator: LinkEmulator;
  /** The overlay node: links, routing and the session endpoint. */
  readonly node: OverlayNode;
  /** The client-facing session service over `node`. */
  readonly sessions: ClientSessions;
  readonly clients: ClientServer;
  readonly control: ControlServer;
  #metrics: MetricsServer | undefined;
  #config: DaemonConfig;
  readonly #endpoints: ReadonlyMap<NodeId, string>;
  readonly #setLogLevel: ((level: DaemonConfig["logLevel"]) => void) | undefined;
  readonly startedAt: number;
  #stopping: Promise<void> | undefined;
  /** Bound ports, for tests and status (useful when 0 was asked for). */
  readonly bound: { udp: string; clientTcp?: number; clientTokenFile?: string; metrics?: number } = {
    udp: "",
  };
  /** The token file this daemon generated (removed at stop). */
  #generatedToken: string | undefined;
  /** The packet trace while one runs (control `trace`). */
  #trace: PacketTrace | undefined;
  /** Event-loop stalls (status `eventLoop`). */
  readonly #loop = new LoopWatch();

  private constructor(opts: DaemonOptions, host: UdpHost, keys: KeySet | undefined) {
    const cfg = opts.config;
    this.#config = cfg;
    this.log = opts.log;
    this.#setLogLevel = opts.setLogLevel;
    this.host = host;
    this.startedAt = host.clock.now();
    this.#endpoints = new Map(cfg.neighbors.map((n) => [n.id, formatEndpoint(n.endpoint)]));
    // The configuration was resolved over DAEMON_DEFAULTS (config.ts); spread them first anyway so
    // a config object built by hand runs the simulated defaults too.
    this.node = new OverlayNode(host, {
      ...DAEMON_DEFAULTS,
      neighbors: cfg.neighbors.map((n) => n.id),
      log: this.log.child({ part: "overlay" }),
      link: { ...DAEMON_DEFAULTS.link, ...cfg.link },
      session: { ...DAEMON_DEFAULTS.session, ...cfg.session },
      metric: cfg.metric,
      // Configured edge costs (config file `cost`, spines.conf Edges): static weights of the links.
      // The overlay's node ids when the configuration lists them (config `nodes`, spines.conf
      // Hosts): routing items naming any other node are dropped (docs/security.md).
      router: { linkCosts: linkCostsOf(cfg), ...(cfg.nodes !== undefined ? { nodes: cfg.nodes } : {}) },
      // Multicast packets for groups clients joined.
      onMulticast: (m) => this.clients.deliverGroup(m.src, m.srcPort, m.group, m.port, m.data),
      // Authenticated datagrams (docs/security.md); the counter starts at the wall clock in µs, so
      // it stays above every counter an earlier run of this node signed.
      ...(keys ? { auth: { keys, counterStart: Date.now() * 1000, encrypt: cfg.encrypt === true } } : {}),
    });
    this.sessions = new ClientSessions(this.node);
    const node = this.node;
    // Groups, anycast and routes for clients (client-server.ts).
    const overlay: ClientOverlay = {
      hasRoute: (n) => node.hasRoute(n),
      route: (n) => node.route(n),
      join: (group) => node.join(group),
      leave: (group) => node.leave(group),
      anycastNearest: (group) => node.anycastNearest(group),
      sendMulticast: (srcPort, group, port, link, data) =>
        node.sendMulticast(group, port, data, { srcPort, linkType: link }),
    };
    this.emulator = new LinkEmulator(host, (from, data) => {
      this.#trace?.stamp(TraceStage.Emu, data);
      node.receive(from, data);
    });
    const deliverLocal = node.plane.deliverLocal;
    node.plane.deliverLocal = (payload, header) => {
      this.#trace?.stamp(TraceStage.Local, payload);
      deliverLocal(payload, header);
    };
    for (const n of cfg.neighbors) if (n.emulation) this.emulator.set(n.id, n.emulation);
    host.attach({
      receive: (from, data) => this.emulator.receive(from, data),
      stop: () => node.stop(),
    });
    const lim = opts.config.limits;
    this.clients = new ClientServer({
      self: opts.config.id,
      service: this.sessions,
      overlay,
      log: this.log.child({ part: "clients" }),
      now: () => host.clock.now(),
      maxClients: lim.maxClients,
      maxFrameBytes: lim.maxClientFrameBytes,
      maxHandlesPerClient: lim.maxHandlesPerClient,
      clientQueueBytes: lim.clientQueueBytes,
      clientStallMs: lim.clientStallMs,
      tcpToken: cfg.clientTcp !== undefined ? this.#tcpToken(cfg) : undefined,
    });
    this.control = new ControlServer({
      commands: this.#commands(),
      log: this.log.child({ part: "control" }),
      maxConnections: lim.maxControlConnections,
      stallMs: lim.clientStallMs,
    });
  }

  get config(): DaemonConfig {
    return this.#config;
  }

  /**
   * The token TCP clients must send in HELLO (docs/security.md): read from `clientToken`, or 32
   * random bytes written hex-encoded to `${control}.token`, created mode 0600 (never more open).
   */
  #tcpToken(cfg: DaemonConfig): Uint8Array {
    if (cfg.clientToken !== undefined) {
      let text: string;
      try {
        text = readFileSync(cfg.clientToken, "utf8").trim();
        if ((statSync(cfg.clientToken).mode & 0o077) !== 0) {
          this.log.warn({ file: cfg.clientToken }, "client token file is readable by other users");
        }
      } catch (e) {
        throw new SpinesError(
          "ERR_CLIENT_TOKEN",
          `cannot read the client token ${cfg.clientToken}: ${(e as Error).message}`,
        );
      }
      if (text.length < 16) {
        throw new SpinesError(
          "ERR_CLIENT_TOKEN",
          `the client token in ${cfg.clientToken} is shorter than 16 characters`,
        );
      }
      this.bound.clientTokenFile = cfg.clientToken;
      return Buffer.from(text, "utf8");
    }
    const file = `${cfg.control}.token`;
    const text = randomBytes(32).toString("hex");
    try {
      unlinkSync(file);
    } catch {
      // none left over
    }
    writeFileSync(file, `${text}\n`, { mode: 0o600, flag: "wx" });
    this.#generatedToken = file;
    this.bound.clientTokenFile = file;
    return Buffer.from(text, "utf8");
  }

  static async start(opts: DaemonOptions): Promise<SpinesDaemon> {
    const cfg = opts.config;
    const keys = cfg.keyFile !== undefined ? readKeyFile(cfg.keyFile) : undefined;
    const host = await UdpHost.open({
      id: cfg.id,
      listen: cfg.listen,
      peers: cfg.neighbors.map((n) => [n.id, n.endpoint] as const),
      log: opts.log.child({ part: "udp" }),
    });
    const d = new SpinesDaemon(opts, host, keys);
    try {
      d.bound.udp = formatEndpoint(host.address());
      if (cfg.clientSocket !== undefined) await d.clients.listenUnix(cfg.clientSocket);
      if (cfg.clientTcp !== undefined) {
        d.bound.clientTcp = await d.clients.listenTcp(cfg.clientTcp.address, cfg.clientTcp.port);
      }
      if (cfg.metrics !== undefined) {
        d.#metrics = new MetricsServer(() => d.metrics());
        d.bound.metrics = await d.#metrics.listen(cfg.metrics.address, cfg.metrics.port);
      }
      // The control socket last: when it answers, everything else is up (tests wait on it).
      await d.control.listen(cfg.control);
    } catch (e) {
      await d.stop();
      throw e;
    }
    d.log.info(
      {
        id: cfg.id,
        udp: d.bound.udp,
        udpIo: d.host.io,
        neighbors: cfg.neighbors.length,
        control: cfg.control,
        clients: cfg.clientSocket,
      },
      "spines-node ready",
    );
    if (keys === undefined) {
      d.log.warn(
        { udp: d.bound.udp },
        "overlay links are UNAUTHENTICATED: anyone who can send UDP to this port can forge link, routing and session packets; give every node the same --key-file (spines-node --gen-key FILE makes one)",
      );
    } else {
      d.log.info(
        { keyFile: cfg.keyFile, keyIds: keys.ids(), encrypt: cfg.encrypt === true },
        cfg.encrypt
          ? "overlay datagrams are authenticated and encrypted"
          : "overlay datagrams are authenticated",
      );
      try {
        if ((statSync(cfg.keyFile as string).mode & 0o077) !== 0)
          d.log.warn({ file: cfg.keyFile }, "key file is readable by other users (chmod 600 it)");
      } catch {
        // read a moment ago; nothing to add
      }
    }
    return d;
  }

  /** Applies what can change without a restart: log level, link emulation and link costs. */
  reload(next: DaemonConfig): { applied: string[]; needsRestart: string[] } {
    const applied: string[] = [];
    const needsRestart: string[] = [];
    const cur = this.#config;
    if (next.logLevel !== cur.logLevel) {
      this.#setLogLevel?.(next.logLevel);
      applied.push("logLevel");
    }
    const known = new Set(cur.neighbors.map((n) => n.id));
    for (const n of next.neighbors) {
      if (!known.has(n.id)) {
        needsRestart.push(`neighbors.${n.id}`);
        continue;
      }
      const before = JSON.stringify(this.emulator.get(n.id) ?? {});
      this.emulator.set(n.id, n.emulation);
      if (JSON.stringify(this.emulator.get(n.id) ?? {}) !== before)
        applied.push(`neighbors.${n.id}.emulation`);
    }
    const nextIds = new Set(next.neighbors.map((n) => n.id));
    for (const id of known) if (!nextIds.has(id)) needsRestart.push(`neighbors.${id}`);
    for (const n of next.neighbors) {
      const prev = cur.neighbors.find((x) => x.id === n.id);
      if (prev && JSON.stringify(prev.endpoint) !== JSON.stringify(n.endpoint))
        needsRestart.push(`neighbors.${n.id}.address`);
    }
    for (const k of [
      "id",
      "listen",
      "control",
      "clientSocket",
      "clientTcp",
      "clientToken",
      "metrics",
      "link",
      "session",
      "metric",
      "limits",
      "nodes",
    ] as const) {
      if (JSON.stringify(next[k]) !== JSON.stringify(cur[k])) needsRestart.push(k);
    }
    if ((next.keyFile === undefined) !== (cur.keyFile === undefined)) needsRestart.push("auth.keyFile");
    if ((next.encrypt === true) !== (cur.encrypt === true)) needsRestart.push("auth.encrypt");
    else if (next.keyFile !== undefined && this.node.auth !== undefined) {
      // key rotation without a restart: the file is read again and its keys replace the set
      try {
        const keys = readKeyFile(next.keyFile);
        const before = this.node.auth.keys.ids().join(",");
        this.node.auth.setKeys(keys);
        if (keys.ids().join(",") !== before || next.keyFile !== cur.keyFile) applied.push("auth.keyFile");
      } catch (e) {
        this.log.error({ err: (e as Error).message }, "key file not reloaded; the current keys stay");
      }
    }
    for (const n of next.neighbors) {
      const prev = cur.neighbors.find((x) => x.id === n.id);
      if (prev === undefined || prev.cost === n.cost) continue;
      this.node.plane.router.setLinkCost(this.host.clock.now(), n.id, n.cost);
      applied.push(`neighbors.${n.id}.cost`);
    }
    this.#config = {
      ...cur,
      ...(applied.includes("auth.keyFile") ? { keyFile: next.keyFile } : {}),
      logLevel: next.logLevel,
      neighbors: cur.neighbors.map((n) => next.neighbors.find((x) => x.id === n.id) ?? n),
    };
    this.log.info({ applied, needsRestart }, "configuration reloaded");
    return { applied, needsRestart };
  }

  /** Every neighbour's liveness with its configured UDP endpoint (control `neighbors`). */
  neighbors(): NeighborView[] {
    return this.node
      .neighborStatus()
      .map((n) => ({ ...n, endpoint: this.#endpoints.get(n.id) ?? "" }))
      .map(({ id, endpoint, state, lastHeardMsAgo, rxFrames, txFrames }) => ({
        id,
        endpoint,
        state,
        lastHeardMsAgo,
        rxFrames,
        txFrames,
      }));
  }

  status(): Record<string, unknown> {
    const now = this.host.clock.now();
    return {
      id: this.#config.id,
      version: VERSION,
      pid: process.pid,
      uptimeMs: Math.round(now - this.startedAt),
      udp: this.bound.udp,
      /** "batch" (node-host's batched recvmmsg/sendmmsg/GSO addon) or "dgram" (node:dgram). */
      udpIo: this.host.io,
      neighbors: this.#config.neighbors.length,
      clients: this.clients.stats.connections,
      sessions: this.sessions.sessions().length,
      logLevel: this.#config.logLevel,
      auth: this.node.auth
        ? { enabled: true, mode: this.node.auth.mode, keyIds: this.node.auth.keys.ids() }
        : { enabled: false },
      counters: {
        ...this.host.stats,
        ...this.node.counters,
        noPort: this.sessions.stats.noPort,
        localQueue: {
          packets: this.node.plane.localQueueLength,
          peak: this.node.plane.localQueuePeak,
          drops: this.node.plane.localQueueDrops,
          controlDrops: this.node.plane.controlQueueDrops,
          forwardHeld: this.node.plane.forwardHeld,
        },
        decodeErrorsByCode: Object.fromEntries(this.node.decodeErrorsByCode),
        auth: this.node.authStats() ?? null,
        emulation: Object.fromEntries(this.emulator.links().map((id) => [id, this.emulator.stats(id)])),
        datagrams: this.sessions.stats,
        clientProtocol: this.clients.stats,
        control: this.control.stats,
        // what routing dropped and why (dropBadNode, dropVersionJump, ...; docs/security.md)
        routing: { ...this.node.plane.router.stats },
        // per neighbour: unproven, challenges, forgedGoodbyes, staleIncarnation, ... (link-arq)
        links: this.#linkCounters(),
      },
      memory: memoryNow(),
      eventLoop: this.#loop.stats(),
    };
  }

  /** Every link's counters (link-arq `LinkStats`) by neighbour id. */
  #linkCounters(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    const driver = this.node.plane.driver;
    for (const id of driver.neighbours) {
      const l = driver.link(id);
      if (l !== undefined) {
        // The reliable channel's sender counters beside the link's own (issue 10: timeouts and
        // spurious retransmissions are what a latency trace needs to see).
        const r = l.reliable.stats;
        out[id] = {
          ...l.stats,
          reliableSent: r.sent,
          reliableRetransmitted: r.retransmitted,
          reliableLostDetected: r.lostDetected,
          reliableRtoFired: r.rtoFired,
          reliableRtoUndone: r.rtoUndone,
          reliableSpurious: r.spurious,
          reliableProbes: r.probes,
          reliableProbesSpurious: r.probesSpurious,
          reliableReorderings: r.reorderings,
          // Acks the receiving half sent (issue 10: ack frames per data frame).
          reliableAcksSent: l.reliableIn.stats.acksSent,
        };
      }
    }
    return out;
  }

  #commands(): Record<string, (args: Record<string, unknown>) => unknown> {
    const neighborArg = (args: Record<string, unknown>): NodeId => {
      const id = argNumber(args, "neighbor", { min: 1, max: 0xfffffffe });
      if (!this.#config.neighbors.some((n) => n.id === id)) {
        throw new ControlError(
          ControlErrorCode.BadArgument,
          `${id} is not a neighbour of node ${this.#config.id}`,
        );
      }
      return id;
    };
    return {
      ping: () => ({ pong: true, id: this.#config.id }),
      status: () => this.status(),
      neighbors: () => this.neighbors(),
      links: () =>
        this.node.linkStatus().map((l) => ({
          ...l,
          cost: this.node.plane.router.linkCost(l.neighbor),
          advertisedCost: this.node.plane.router.advertisedCost(l.neighbor) ?? null,
          emulation: this.emulator.get(l.neighbor) ?? null,
          emulationStats: this.emulator.stats(l.neighbor) ?? null,
        })),
      routes: () => this.node.routes(),
      groups: () => this.node.groups(),
      sessions: () => this.sessions.sessions(),
      trace: (args) => this.#traceCommand(args),
      "get-link": (args) => {
        const id = neighborArg(args);
        return {
          neighbor: id,
          emulation: this.emulator.get(id) ?? null,
          stats: this.emulator.stats(id) ?? null,
        };
      },
      "set-link": (args) => {
        const id = neighborArg(args);
        const raw = args.emulation ?? null;
        let params: EmulationParams | undefined;
        if (raw !== null) {
          const r = checkEmulation(raw);
          if (!r.ok) {
            throw new ControlError(
              ControlErrorCode.BadArgument,
              `emulation${r.key ? `.${r.key}` : ""}: expected ${r.expected}, found ${JSON.stringify(r.found)}`,
            );
          }
          params = r.params;
        }
        this.emulator.set(id, params);
        this.log.info({ neighbor: id, emulation: params ?? null }, "link emulation set");
        return { neighbor: id, emulation: this.emulator.get(id) ?? null };
      },
      "log-level": (args) => {
        const level = args.level;
        const levels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
        if (typeof level !== "string" || !levels.includes(level)) {
          throw new ControlError(ControlErrorCode.BadArgument, `"level" must be one of ${levels.join(", ")}`);
        }
        this.#setLogLevel?.(level as DaemonConfig["logLevel"]);
        this.#config = { ...this.#config, logLevel: level as DaemonConfig["logLevel"] };
        return { level };
      },
    };
  }

  /**
   * Control `trace`: `{ action: "start", capacity? }` starts a fresh packet trace (a ring of
   * `capacity` stamps), `"dump"` returns it, `"stop"` returns it and ends it (src/trace.ts).
   */
  #traceCommand(args: Record<string, unknown>): unknown {
    const action = args.action;
    if (action === "start") {
      const capacity =
        args.capacity === undefined
          ? undefined
          : argNumber(args, "capacity", { min: 1, max: MAX_TRACE_CAPACITY });
      const t = new PacketTrace(capacity);
      this.#trace = t;
      this.host.tap = (tx, data) => t.stamp(tx ? TraceStage.Tx : TraceStage.Rx, data);
      this.sessions.trace = (fromClient, data) =>
        t.stamp(fromClient ? TraceStage.FromClient : TraceStage.Client, data);
      return { tracing: true, capacity: t.capacity };
    }
    if (action === "dump" || action === "stop") {
      const t = this.#trace;
      if (action === "stop") {
        this.#trace = undefined;
        this.host.tap = undefined;
        this.sessions.trace = undefined;
      }
      return t === undefined ? { tracing: false } : { tracing: action === "dump", ...t.dump() };
    }
    throw new ControlError(ControlErrorCode.BadArgument, '"action" must be "start", "dump" or "stop"');
  }

  metrics(): Metric[] {
    const id = String(this.#config.id);
    const c = (name: string, help: string, value: number): Metric => ({
      name,
      help,
      type: "counter",
      samples: [{ labels: { node: id }, value }],
    });
    const g = (name: string, help: string, value: number): Metric => ({
      ...c(name, help, value),
      type: "gauge",
    });
    const h = this.host.stats;
    const p = this.node.counters;
    return [
      c("spines_udp_rx_packets_total", "UDP datagrams received", h.rxPackets),
      c("spines_udp_rx_bytes_total", "UDP bytes received", h.rxBytes),
      c("spines_udp_tx_packets_total", "UDP datagrams sent", h.txPackets),
      c("spines_udp_tx_bytes_total", "UDP bytes sent", h.txBytes),
      c("spines_udp_rx_unknown_peer_total", "UDP datagrams from unknown endpoints", h.rxUnknownPeer),
      c("spines_udp_tx_errors_total", "UDP send errors", h.txErrors),
      {
        name: "spines_decode_errors_total",
        help: "Frames that could not be decoded, by reason",
        type: "counter",
        samples: [...this.node.decodeErrorsByCode].map(([code, value]) => ({
          labels: { node: id, code },
          value,
        })),
      },
      {
        name: "spines_auth_dropped_total",
        help: "Datagrams dropped by authentication, by reason (only with --key-file)",
        type: "counter",
        samples: Object.entries(this.node.authStats() ?? {})
          .filter(([k]) => k !== "signed" && k !== "accepted" && k !== "replayEvicted")
          .map(([reason, value]) => ({ labels: { node: id, reason }, value })),
      },
      {
        name: "spines_routing_dropped_total",
        help: "Routing items or messages dropped, by reason (badNode: a node outside the configured nodes)",
        type: "counter",
        samples: Object.entries(this.node.plane.router.stats)
          .filter(([k]) => k.startsWith("drop"))
          .map(([k, value]) => ({
            labels: { node: id, reason: `${k.charAt(4).toLowerCase()}${k.slice(5)}` },
            value,
          })),
      },
      c(
        "spines_routing_stale_incarnation_total",
        "Routing frames under an incarnation of the neighbour its link has not proven",
        p.routingStaleIncarnation,
      ),
      {
        name: "spines_link_rejected_total",
        help: "Link frames rejected, by neighbour and reason (unproven incarnation, forged goodbye, ...)",
        type: "counter",
        samples: Object.entries(this.#linkCounters()).flatMap(([n, st]) =>
          (["unproven", "staleIncarnation", "forgedGoodbyes", "foreign"] as const).map((reason) => ({
            labels: { node: id, neighbor: Number(n), reason },
            value: st[reason] ?? 0,
          })),
        ),
      },
      c("spines_frames_delivered_total", "Overlay packets delivered to local ports", p.delivered),
      c("spines_frames_forwarded_total", "Overlay packets forwarded to a next hop", p.forwarded),
      c("spines_frames_no_route_total", "Overlay packets dropped for lack of a route", p.noRoute),
      {
        name: "spines_emulation_lost_total",
        help: "Packets dropped by link emulation (loss)",
        type: "counter",
        samples: this.emulator
          .links()
          .map((n) => ({ labels: { node: id, neighbor: n }, value: this.emulator.stats(n)?.lost ?? 0 })),
      },
      ...this.#linkMetrics(id),
      g("spines_clients", "Connected clients", this.clients.stats.connections),
      c(
        "spines_clients_refused_total",
        "Client and control connections refused at their limit",
        this.clients.stats.refused + this.control.stats.refused,
      ),
      c(
        "spines_clients_disconnected_slow_total",
        "Client and control connections closed for not reading their replies",
        this.clients.stats.disconnectedSlowClient + this.control.stats.disconnectedSlowClient,
      ),
      c(
        "spines_clients_unauthorized_total",
        "TCP client HELLOs without the token",
        this.clients.stats.unauthorized,
      ),
      g("spines_sessions", "Open sessions", this.sessions.sessions().length),
      g("spines_timers_pending", "Pending timers", this.host.pendingTimers),
    ];
  }

  #linkMetrics(id: string): Metric[] {
    const links = this.node.linkStatus();
    const gauge = (name: string, help: string, pick: (l: LinkStatus) => number | null): Metric => ({
      name,
      help,
      type: "gauge",
      samples: links.flatMap((l) => {
        const v = pick(l);
        return v === null ? [] : [{ labels: { node: id, neighbor: l.neighbor }, value: v }];
      }),
    });
    return [
      gauge("spines_link_up", "1 when the link to the neighbour is up", (l) => (l.state === "up" ? 1 : 0)),
      gauge("spines_link_rtt_ms", "Smoothed round-trip time of the link (ms)", (l) => l.rttMs),
      gauge(
        "spines_link_loss_ratio",
        "Loss rate of our data on the link, as the neighbour reports it",
        (l) => l.loss,
      ),
      gauge("spines_link_cwnd_bytes", "Congestion window of the reliable channel (bytes)", (l) => l.window),
      gauge("spines_link_held_packets", "Received packets held by the link (back-pressure)", (l) => l.queue),
    ];
  }

  /**
   * Closes sessions (telling peers), then every socket. Idempotent. Bounded: each step gets at most
   * STOP_STEP_MS, after which the next one runs anyway (clients that do not read, peers that do not
   * answer cannot hold the daemon up).
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.log.info({ id: this.#config.id }, "spines-node stopping");
      this.#loop.stop();
      const step = async (what: string, p: () => Promise<void> | undefined): Promise<void> => {
        let t: ReturnType<typeof setTimeout> | undefined;
        try {
          const r = await Promise.race([
            Promise.resolve(p()).then(() => "done" as const),
            new Promise<"late">((res) => {
              t = setTimeout(() => res("late"), STOP_STEP_MS);
              t.unref();
            }),
          ]);
          if (r === "late")
            this.log.warn({ step: what, ms: STOP_STEP_MS }, "stop step took too long; going on");
        } catch (e) {
          this.log.warn({ step: what, err: String(e) }, "stop step failed");
        } finally {
          clearTimeout(t);
        }
      };
      await step("sessions", () => this.sessions.shutdown());
      await step("clients", () => this.clients.close());
      await step("control", () => this.control.close());
      await step("metrics", () => this.#metrics?.close());
      this.emulator.clear();
      await step("udp", () => this.host.close());
      if (this.#generatedToken !== undefined) {
        try {
          unlinkSync(this.#generatedToken);
        } catch {
          // already gone
        }
      }
    })();
    return this.#stopping;
  }
}

/**
 * How late a 20 ms interval timer fires: stalls of the event loop (a long task, GC, a host starved
 * of CPU), in which no datagram was read and no timer ran. Peers' dead timeouts count that time, so
 * status shows it: an operator (and the soak) can tell "the network lost us" from "this host could
 * not run us". Bounded: one counter, one maximum, the worst stall of the last 12 five-second windows.
 */
class LoopWatch {
  static readonly TICK_MS = 20;
  static readonly STALL_MS = 50;
  static readonly WINDOW_MS = 5000;
  #stalls = 0;
  #maxStallMs = 0;
  #last = performance.now();
  #windowStart = this.#last;
  #current = 0;
  readonly #windows: number[] = [];
  #timer: ReturnType<typeof setInterval> | undefined = setInterval(() => this.#tick(), LoopWatch.TICK_MS);

  constructor() {
    this.#timer?.unref();
  }

  #tick(): void {
    const t = performance.now();
    const stall = t - this.#last - LoopWatch.TICK_MS;
    this.#last = t;
    if (stall > LoopWatch.STALL_MS) this.#stalls++;
    this.#maxStallMs = Math.max(this.#maxStallMs, stall);
    this.#current = Math.max(this.#current, stall);
    if (t - this.#windowStart >= LoopWatch.WINDOW_MS) {
      this.#windows.push(this.#current);
      if (this.#windows.length > 12) this.#windows.shift();
      this.#current = 0;
      this.#windowStart = t;
    }
  }

  /** Stalls over 50 ms, the longest since start, of the last minute, and of the last 5-10 s (ms). */
  stats(): { stalls: number; maxStallMs: number; lastMinuteMaxStallMs: number; recentMaxStallMs: number } {
    const prev = this.#windows[this.#windows.length - 1] ?? 0;
    return {
      stalls: this.#stalls,
      maxStallMs: Math.round(this.#maxStallMs),
      lastMinuteMaxStallMs: Math.round(Math.max(0, this.#current, ...this.#windows)),
      recentMaxStallMs: Math.round(Math.max(0, this.#current, prev)),
    };
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** The process's memory (bytes, `process.memoryUsage()`): RSS and the V8 heap, for status and the soak. */
function memoryNow(): Record<string, number> {
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

/** The configured cost of each neighbour that has one (the router's static link weights). */
function linkCostsOf(cfg: DaemonConfig): Map<NodeId, number> {
  return new Map(cfg.neighbors.flatMap((n) => (n.cost === undefined ? [] : [[n.id, n.cost] as const])));
}
