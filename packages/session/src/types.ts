import type { SpinesError } from "@spines-ts/primitives";
import type { LinkType, SessionMessage } from "@spines-ts/wire";

/** One packet for the overlay to carry to node `to`, on the preferred link type. */
export interface OutPacket {
  readonly to: number;
  readonly linkType: LinkType;
  readonly msg: SessionMessage;
}

/** What the core tells the application. `sid` is the local session handle. */
export type SessionEvent =
  /** An open we started was accepted. */
  | { readonly type: "connected"; readonly sid: number }
  /** A session waits in the accept queue of `port`; call `accept(port)`. */
  | { readonly type: "incoming"; readonly port: number }
  /** In-order bytes are ready for `read`. */
  | { readonly type: "readable"; readonly sid: number }
  /** The send buffer has room again after a short `write`. */
  | { readonly type: "writable"; readonly sid: number }
  /** The peer finished sending and every byte was read. */
  | { readonly type: "end"; readonly sid: number }
  /** The session is over; `error` is undefined for a clean close or a local reset. */
  | { readonly type: "closed"; readonly sid: number; readonly error: SpinesError | undefined }
  /** A whole datagram message arrived at bound `port`. */
  | {
      readonly type: "datagram";
      readonly port: number;
      readonly src: number;
      readonly srcPort: number;
      readonly reliable: boolean;
      readonly data: Uint8Array;
    }
  /** A reliable datagram (by the id `sendDatagram` returned) was fully acknowledged. */
  | { readonly type: "datagramAcked"; readonly id: number }
  /** A reliable datagram failed (timeout or nothing bound at the destination). */
  | { readonly type: "datagramFailed"; readonly id: number; readonly error: SpinesError }
  /** Reliable datagram buffer space was freed after `sendDatagram` returned false. */
  | { readonly type: "datagramWritable" };

/** A snapshot of one session, for status displays and tests. */
export interface SessionInfo {
  readonly sid: number;
  readonly state: "connecting" | "open" | "finished";
  readonly localPort: number;
  readonly remoteNode: number;
  readonly remotePort: number;
  readonly linkType: LinkType;
  readonly srttMs: number | undefined;
  readonly rtoMs: number;
  /** Bytes held for sending (unsent and unacknowledged). */
  readonly sendBuffered: number;
  readonly inFlight: number;
  readonly peerWindow: number;
  /** Bytes received in order and not yet read. */
  readonly unread: number;
  readonly outOfOrderBytes: number;
  readonly outOfOrderSegments: number;
  readonly segmentsSent: number;
  readonly segmentsRetransmitted: number;
  /** Times new data waited because the transport had no room for the flow (diagnostics). */
  readonly transportBlocked?: number;
  /** Times new data waited for the peer's window (diagnostics). */
  readonly windowBlocked?: number;
  readonly localFinished: boolean;
  readonly peerFinished: boolean;
}
