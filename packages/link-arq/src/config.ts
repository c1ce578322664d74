import type { CongestionConfig } from "@spines-ts/congestion";
import { ConfigError } from "@spines-ts/primitives";

/** Every tunable of a link, with the defaults in `defaultLinkConfig`. Times in ms, sizes in bytes. */
export interface LinkConfig {
  /** Hello period. */
  readonly helloIntervalMs: number;
  /** Declared dead after this long without any frame from the neighbour. */
  readonly deadTimeoutMs: number;
  /** After going down, stay down at least this long (damps flapping). */
  readonly holdDownMs: number;
  /** Hellos proving two-way contact needed before the link comes up. */
  readonly upAfterHellos: number;
  /**
   * Least time between two hellos sent at once, outside the hello schedule, to run the incarnation
   * handshake (docs/links.md §2.1): bounds what forged hellos can make a link send.
   */
  readonly challengeIntervalMs: number;
  /** Largest frame this link sends (header included); payload max is mtu − 44. */
  readonly mtu: number;
  /** Window controller of the reliable channel: TCP-fair NewReno by default. */
  readonly congestion: CongestionConfig;
  /**
   * MulTCP (docs/congestion.md): the NewReno window of a link carrying k active flows behaves like
   * min(k, maxEmulatedFlows) TCP flows (k counted from the flow keys of the packets sent, with
   * hysteresis), so each overlay flow gets about one TCP flow's share of a shared bottleneck.
   * 1 turns it off (the link is one TCP flow whatever it carries). CUBIC and the rate mode ignore it.
   */
  readonly maxEmulatedFlows: number;
  /** Measurement period of the active-flow count (the count drops after 3 lower periods). */
  readonly flowCountPeriodMs: number;
  /**
   * Pace the window modes at gain·cwnd/SRTT (the rate mode always paces). Off by default: paced
   * with delayed acks, a link takes 1.15–1.3× its fair share from an unpaced NewReno flow at a
   * drop-tail bottleneck (see docs/links.md §6).
   */
  readonly pacing: boolean;
  /** Optional cap on all data the link sends (bytes per ms); undefined: none. */
  readonly rateCapBytesPerMs: number | undefined;
  /** Burst of the cap's token bucket. */
  readonly rateCapBurstBytes: number;
  /** Reliable send buffer (queued + unacknowledged), packets and bytes. */
  readonly sendBufferPackets: number;
  readonly sendBufferBytes: number;
  /** Packets one flow may queue before `send` says would-block for it. */
  readonly perFlowPackets: number;
  /** Flows with queued packets at once. */
  readonly maxFlows: number;
  /** Receive window: sequence numbers accepted above the cumulative ack. */
  readonly recvWindowPackets: number;
  /** Received packets held until the owner consumes them, packets and bytes (all channels). */
  readonly recvBufferPackets: number;
  readonly recvBufferBytes: number;
  /** Delayed acks: ack at least every `ackEvery` packets or after this delay. */
  readonly maxAckDelayMs: number;
  readonly ackEvery: number;
  /**
   * Send acks that fall due while frames are being handled from the timer instead (at the same
   * time, after the rest of the batch): one ack per event-loop turn of input under load.
   */
  readonly ackCoalescing: boolean;
  /** Retransmission timeout bounds (the RTO is SRTT + 4·RTTVAR + maxAckDelay). */
  readonly minRtoMs: number;
  readonly maxRtoMs: number;
  readonly initialRtoMs: number;
  /** Loss detection: packet threshold and time threshold (× max(SRTT, latest RTT)). */
  readonly packetThreshold: number;
  readonly timeThreshold: number;
  /** Real-time channel: how long packets stay recoverable, how many are kept. */
  readonly realtimeHistoryMs: number;
  readonly realtimeHistoryPackets: number;
  /** Retransmissions may be at most this share of new real-time packets. */
  readonly realtimeRetransmitShare: number;
  /** Duplicate-detection window of the real-time and best-effort channels. */
  readonly unreliableWindowPackets: number;
  /** Per-packet EWMA weight of the receiver's loss estimate (Spines: 0.01). */
  readonly lossEwmaAlpha: number;
  /** How often a metrics event is emitted. */
  readonly metricsIntervalMs: number;
  /**
   * First sequence number of the reliable channel, both directions (tests use it to start next to
   * the 2^32 wrap). Undefined (the default): each direction starts at a 32-bit mix of the sender's
   * and the receiver's incarnations, which are random per process start and known to both ends, so
   * every pair of lives gets its own unpredictable starting point without a field on the wire.
   */
  readonly initialSequence: number | undefined;
}

export const defaultLinkConfig: LinkConfig = {
  helloIntervalMs: 100,
  deadTimeoutMs: 1000,
  holdDownMs: 1000,
  upAfterHellos: 2,
  challengeIntervalMs: 20,
  mtu: 1400,
  congestion: { kind: "newreno" },
  maxEmulatedFlows: 16,
  flowCountPeriodMs: 500,
  pacing: false,
  rateCapBytesPerMs: undefined,
  rateCapBurstBytes: 16 * 1400,
  sendBufferPackets: 1024,
  sendBufferBytes: 1024 * 1400,
  perFlowPackets: 512,
  maxFlows: 256,
  recvWindowPackets: 4096,
  recvBufferPackets: 1024,
  recvBufferBytes: 1024 * 1400,
  maxAckDelayMs: 2,
  ackEvery: 2,
  ackCoalescing: true,
  minRtoMs: 10,
  maxRtoMs: 2000,
  initialRtoMs: 500,
  packetThreshold: 3,
  timeThreshold: 9 / 8,
  realtimeHistoryMs: 100,
  realtimeHistoryPackets: 1000,
  realtimeRetransmitShare: 0.5,
  unreliableWindowPackets: 1024,
  lossEwmaAlpha: 0.01,
  metricsIntervalMs: 1000,
  initialSequence: undefined,
};

/** Wire overhead of a data frame: 16 (frame) + 14 (LinkData fields) + 14 (overlay header). */
export const DATA_OVERHEAD_BYTES = 44;

/** Merges `partial` over the defaults and checks every value; throws ConfigError naming the key. */
export function resolveLinkConfig(partial: Partial<LinkConfig> = {}, source = "link config"): LinkConfig {
  if (typeof partial !== "object" || partial === null) throw new TypeError(`${source} must be an object`);
  const c = { ...defaultLinkConfig, ...partial } as LinkConfig;
  const num = (k: keyof LinkConfig, min: number, int = false, max = Number.POSITIVE_INFINITY): void => {
    const v = c[k] as unknown;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v)))
      throw new ConfigError(source, k, `${int ? "an integer" : "a number"} in [${min}, ${max}]`, v);
  };
  num("helloIntervalMs", 1);
  num("deadTimeoutMs", c.helloIntervalMs);
  num("holdDownMs", 0);
  num("upAfterHellos", 1, true, 100);
  num("challengeIntervalMs", 0);
  num("mtu", DATA_OVERHEAD_BYTES + 1, true, 65_507);
  num("maxEmulatedFlows", 1, true, 256);
  num("flowCountPeriodMs", 1, false, 60_000);
  num("rateCapBurstBytes", 1);
  num("sendBufferPackets", 1, true);
  num("sendBufferBytes", c.mtu);
  num("perFlowPackets", 1, true);
  num("maxFlows", 1, true);
  num("recvWindowPackets", 2, true, 1 << 20);
  num("recvBufferPackets", 1, true);
  num("recvBufferBytes", c.mtu);
  num("maxAckDelayMs", 0);
  num("ackEvery", 1, true);
  num("minRtoMs", 0.1);
  num("maxRtoMs", c.minRtoMs);
  num("initialRtoMs", 0.1);
  num("packetThreshold", 1, true);
  num("timeThreshold", 1);
  num("realtimeHistoryMs", 0);
  num("realtimeHistoryPackets", 1, true);
  num("realtimeRetransmitShare", 0, false, 1);
  num("unreliableWindowPackets", 8, true, 1 << 20);
  num("lossEwmaAlpha", 0.0001, false, 1);
  num("metricsIntervalMs", 1);
  if (c.rateCapBytesPerMs !== undefined) num("rateCapBytesPerMs", 1e-6);
  if (c.initialSequence !== undefined) num("initialSequence", 0, true, 0xffffffff);
  if (typeof c.pacing !== "boolean") throw new ConfigError(source, "pacing", "a boolean", c.pacing);
  if (typeof c.ackCoalescing !== "boolean")
    throw new ConfigError(source, "ackCoalescing", "a boolean", c.ackCoalescing);
  const k = (c.congestion as { kind?: unknown } | undefined)?.kind;
  if (k !== "newreno" && k !== "cubic" && k !== "rate" && k !== "bbr")
    throw new ConfigError(source, "congestion.kind", '"newreno", "cubic", "rate" or "bbr"', k);
  if (c.sendBufferPackets > c.recvWindowPackets)
    throw new ConfigError(
      source,
      "sendBufferPackets",
      `at most recvWindowPackets (${c.recvWindowPackets})`,
      c.sendBufferPackets,
    );
  return c;
}
