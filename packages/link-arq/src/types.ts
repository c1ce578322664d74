import type { FlowKey } from "@spines-ts/congestion";
import type { LinkChannel, LinkMessage, OverlayHeader } from "@spines-ts/wire";

/** A received overlay packet waiting for the owner (the forwarding layer) to take it. */
export interface Delivery {
  readonly channel: LinkChannel;
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
  /** Link-level sequence number (per channel), for tracing. */
  readonly seq: number;
  /** When the link received it (ms). */
  readonly receivedAt: number;
}

/** What `Link.send` did with a packet. */
export const SendResult = {
  /** Accepted: sent now or queued; a reliable packet will be delivered exactly once unless the peer restarts. */
  Ok: "ok",
  /** Refused: the buffer (or this flow's share, or the rate cap) is full; a `writable` event follows. */
  WouldBlock: "would-block",
  /** Refused: the link is not up. */
  Down: "down",
  /** Refused: the packet does not fit in one frame of the link's MTU. */
  TooBig: "too-big",
} as const;
export type SendResult = (typeof SendResult)[keyof typeof SendResult];

export type LinkState = "down" | "up";

export interface LinkMetrics {
  /** Smoothed RTT and variance (ms), undefined before the first sample. */
  readonly srtt: number | undefined;
  readonly rttvar: number;
  readonly minRtt: number | undefined;
  /**
   * The least hello RTT sample of the last 5-10 s (ms; absent without one): the round trip without
   * the queueing our own traffic adds. Routing costs use it rather than SRTT.
   */
  readonly pathRtt?: number;
  /** Loss rate of our data as measured and reported by the neighbour. */
  readonly lossOut: number;
  /** Loss rate of the neighbour's data as we measure it. */
  readonly lossIn: number;
  /** Reliable channel congestion window (bytes; Infinity in rate mode). */
  readonly cwnd: number;
  readonly bytesInFlight: number;
  /** TCP flows the reliable window emulates (MulTCP; 1 = one flow, see `Link.flowCount`). */
  readonly flows?: number;
}

export type LinkEvent =
  | { readonly type: "up"; readonly at: number }
  | {
      readonly type: "down";
      readonly at: number;
      /**
       * `timeout`: nothing heard for the dead timeout; `oneway`: the peer's hellos say it has not
       * heard ours for the dead timeout; `goodbye`/`restart`: the peer shut down or restarted.
       */
      readonly reason: "timeout" | "oneway" | "goodbye" | "restart";
    }
  | {
      readonly type: "restart";
      readonly at: number;
      readonly oldIncarnation: number;
      readonly newIncarnation: number;
      readonly discarded: number;
    }
  | { readonly type: "writable"; readonly at: number; readonly flow?: FlowKey }
  | ({ readonly type: "metrics"; readonly at: number } & LinkMetrics);

/** What a channel needs from its link. */
export interface ChannelContext {
  readonly now: () => number;
  readonly emit: (msg: LinkMessage) => void;
  readonly peerIncarnation: () => number;
}
