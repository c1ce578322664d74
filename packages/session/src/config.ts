import { ConfigError } from "@spines-ts/primitives";

/** Every knob of the session layer; all bounds are explicit. Times in ms, sizes in bytes. */
export interface SessionConfig {
  /** Largest stream segment payload (bytes). */
  readonly mss: number;
  /** Bytes a stream holds for sending (unsent + unacknowledged); `write` accepts no more. */
  readonly sendBufferBytes: number;
  /** Bytes a stream holds received (unread in order + out of order); also the advertised window. */
  readonly receiveBufferBytes: number;
  /** Most out-of-order segments a stream buffers. */
  readonly maxOutOfOrderSegments: number;
  /** Most sessions (any state, including lingering ones) per endpoint. */
  readonly maxSessions: number;
  /** Default and largest accept backlog per listening port. */
  readonly defaultBacklog: number;
  /** Retransmission timeout before any RTT sample (also the open retry interval). */
  readonly initialRtoMs: number;
  /** Floor of the RTT-based retransmission timeout. */
  readonly minRtoMs: number;
  /** Cap of the retransmission timeout after back-off. */
  readonly maxRtoMs: number;
  /**
   * Reordering window of SACK-based loss detection on sessions over reliable links, in units of the
   * current retransmission timeout (0: the same srtt/4 window as on other link types). Over
   * hop-by-hop reliable links a segment missing while later ones arrive is almost always being
   * recovered by a link (about one link round trip per loss on a hop), so declaring it lost after a
   * quarter of the end-to-end RTT resends end to end what the links already recovered. With 1, a
   * hole counts as lost only once a segment sent a whole RTO later was delivered (an RTO-recovered
   * segment still dates every earlier hole after a transit crash).
   */
  readonly reliableReorderRtos: number;
  /**
   * On sessions over reliable links, acknowledge an out-of-order segment at once (as on other link
   * types). Off (default): it waits for the ordinary ack (`ackEvery` segments or `ackDelayMs`),
   * like an in-order one. There the SACK only serves the `reliableReorderRtos` loss detection,
   * which waits a whole RTO anyway, while an ack per segment during every link recovery doubled the
   * packets the path carried (issue 10).
   */
  readonly reliableSackAtOnce: boolean;
  /** Longest a received in-order segment waits for its ack. */
  readonly ackDelayMs: number;
  /** Ack at once after this many unacknowledged in-order segments. */
  readonly ackEvery: number;
  /** A silent peer is probed after this long. */
  readonly keepaliveIntervalMs: number;
  /** A peer silent this long is declared dead and the session ends with PeerDeadError. */
  readonly deadPeerTimeoutMs: number;
  /** An open not accepted within this long ends with ConnectTimeoutError. */
  readonly connectTimeoutMs: number;
  /**
   * After close(), once all our data is acknowledged, the peer must finish its side within this
   * long, or the session is reset (a peer that keeps sending after our close cannot hold it forever).
   */
  readonly closeTimeoutMs: number;
  /** A finished session keeps answering retransmitted FINs this long before its state is freed. */
  readonly lingerMs: number;
  /** Hop limit put in the overlay header. */
  readonly ttl: number;
  /** Payload bytes per datagram fragment. */
  readonly datagramFragmentBytes: number;
  /** Bytes all partially reassembled datagrams may occupy together. */
  readonly maxReassemblyBytes: number;
  /** A partial datagram with no new fragment for this long is dropped. */
  readonly reassemblyTimeoutMs: number;
  /** Bytes of reliable datagrams awaiting acknowledgement per endpoint. */
  readonly datagramSendBufferBytes: number;
  /** Reliable datagrams awaiting acknowledgement per flow (less than half the dedup window). */
  readonly maxOutstandingPerFlow: number;
  /** Message ids a receiver remembers per flow for exactly-once delivery. */
  readonly dedupWindow: number;
  /** Datagram flows (sending and receiving, each) per endpoint. */
  readonly maxDatagramFlows: number;
  /** An idle datagram flow's state may be dropped after this long. */
  readonly datagramFlowIdleMs: number;
  /** A reliable datagram not acknowledged within this long fails with DatagramTimeoutError. */
  readonly datagramTimeoutMs: number;
}

export const defaultSessionConfig: SessionConfig = {
  mss: 1100,
  sendBufferBytes: 256 * 1024,
  receiveBufferBytes: 256 * 1024,
  maxOutOfOrderSegments: 4096,
  maxSessions: 1024,
  defaultBacklog: 128,
  initialRtoMs: 1000,
  minRtoMs: 50,
  maxRtoMs: 2000,
  reliableReorderRtos: 1,
  reliableSackAtOnce: false,
  ackDelayMs: 10,
  ackEvery: 2,
  keepaliveIntervalMs: 1000,
  deadPeerTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  closeTimeoutMs: 10_000,
  lingerMs: 4000,
  ttl: 64,
  datagramFragmentBytes: 1100,
  maxReassemblyBytes: 1024 * 1024,
  reassemblyTimeoutMs: 5000,
  datagramSendBufferBytes: 1024 * 1024,
  maxOutstandingPerFlow: 64,
  dedupWindow: 1024,
  maxDatagramFlows: 1024,
  datagramFlowIdleMs: 60_000,
  datagramTimeoutMs: 10_000,
};

const SOURCE = "SessionConfig";

function int(c: Record<string, number>, key: string, lo: number, hi: number): void {
  const v = c[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw new ConfigError(SOURCE, key, `an integer in [${lo}, ${hi}]`, v);
  }
}

function num(c: Record<string, number>, key: string, lo: number, hi: number): void {
  const v = c[key];
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi) {
    throw new ConfigError(SOURCE, key, `a number in [${lo}, ${hi}]`, v);
  }
}

/** Fills in defaults and validates; throws ConfigError naming the key. */
export function resolveSessionConfig(partial: Partial<SessionConfig> = {}): SessionConfig {
  if (typeof partial !== "object" || partial === null) {
    throw new ConfigError(SOURCE, "(root)", "an object", partial);
  }
  for (const k of Object.keys(partial)) {
    if (!(k in defaultSessionConfig)) throw new ConfigError(SOURCE, k, "a known option", k);
  }
  const c = { ...defaultSessionConfig, ...partial };
  const r = c as unknown as Record<string, number>;
  const day = 86_400_000;
  int(r, "mss", 1, 60_000);
  int(r, "sendBufferBytes", c.mss, 1 << 30);
  int(r, "receiveBufferBytes", 4 * c.mss, 0xffffffff);
  int(r, "maxOutOfOrderSegments", 1, 1 << 20);
  int(r, "maxSessions", 1, 1 << 20);
  int(r, "defaultBacklog", 1, 1 << 16);
  num(r, "initialRtoMs", 1, day);
  num(r, "minRtoMs", 1, day);
  num(r, "maxRtoMs", c.minRtoMs, day);
  num(r, "reliableReorderRtos", 0, 16);
  if (typeof c.reliableSackAtOnce !== "boolean")
    throw new ConfigError(SOURCE, "reliableSackAtOnce", "a boolean", c.reliableSackAtOnce);
  num(r, "ackDelayMs", 0, day);
  int(r, "ackEvery", 1, 1 << 16);
  num(r, "keepaliveIntervalMs", 1, day);
  num(r, "deadPeerTimeoutMs", c.keepaliveIntervalMs, day);
  num(r, "connectTimeoutMs", 1, day);
  num(r, "closeTimeoutMs", 1, day);
  num(r, "lingerMs", 0, day);
  int(r, "ttl", 1, 255);
  int(r, "datagramFragmentBytes", 1, 60_000);
  int(r, "maxReassemblyBytes", 65_536, 1 << 30);
  num(r, "reassemblyTimeoutMs", 1, day);
  int(r, "datagramSendBufferBytes", 65_536, 1 << 30);
  int(r, "dedupWindow", 2, 1 << 20);
  int(r, "maxOutstandingPerFlow", 1, Math.floor(c.dedupWindow / 2));
  int(r, "maxDatagramFlows", 1, 1 << 20);
  num(r, "datagramFlowIdleMs", c.datagramTimeoutMs, day);
  num(r, "datagramTimeoutMs", 1, day);
  return c;
}
