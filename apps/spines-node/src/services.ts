/**
 * The seam between the client protocol (client-server.ts) and the sessions that carry it: listeners,
 * stream sessions and datagram sockets on virtual ports, as the client server uses them. The daemon
 * implements it over its `OverlayNode` (client-sessions.ts).
 */

import type { ClosedReason } from "@spines-ts/client/protocol";
import type { NodeId } from "@spines-ts/primitives";
import { SpinesError } from "@spines-ts/primitives";
import type { LinkType } from "@spines-ts/wire";

/** Most accepts one listener may have pending. */
export const MAX_BACKLOG = 1024;

export class SessionError extends SpinesError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = "SessionError";
  }
}

/** Where a session delivers what arrives for the client. */
export interface StreamSink {
  /** Bytes in order. Returns false when the client is not keeping up (the sender should pause). */
  data(bytes: Uint8Array): boolean;
  /** The peer will send no more. */
  end(): void;
  /** The session is gone. */
  closed(reason: ClosedReason, code: string, message: string): void;
  /** True while the client accepts more data. */
  readonly writable: boolean;
  /** Called once when `writable` becomes true again. */
  whenWritable(fn: () => void): void;
}

export interface StreamSession {
  readonly localPort: number;
  readonly remoteNode: NodeId;
  readonly remotePort: number;
  readonly link: LinkType;
  /** Starts delivering to `sink` (and flushes what arrived before). */
  attach(sink: StreamSink): void;
  /** Queues bytes; returns false when the sender should pause until `whenWritable`. */
  write(bytes: Uint8Array): boolean;
  whenWritable(fn: () => void): void;
  /** Half-close: no more writes from this side. */
  shutdown(): void;
  /** Abort at once; the peer sees a reset. */
  reset(): void;
  /** Graceful close: shutdown, then forget the session once the peer is done. */
  close(): void;
  /** Snapshot for the control socket. */
  info(): SessionInfo;
}

export interface SessionInfo {
  readonly localPort: number;
  readonly remoteNode: NodeId;
  readonly remotePort: number;
  readonly link: LinkType;
  readonly state: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** End-to-end details, when the session core runs the session. */
  readonly srttMs?: number | null;
  readonly sendBuffered?: number;
  readonly inFlight?: number;
  readonly peerWindow?: number;
  readonly retransmitted?: number;
  /** Times the stream held new data back: no room in the transport, or the peer's window. */
  readonly transportBlocked?: number;
  readonly windowBlocked?: number;
}

export interface Listener {
  readonly port: number;
  readonly link: LinkType;
  /** Resolves with the next incoming session (sessions wait in a backlog until accepted). */
  accept(): Promise<StreamSession>;
  close(): void;
}

export interface DatagramSocket {
  readonly port: number;
  readonly link: LinkType;
  sendTo(node: NodeId, port: number, data: Uint8Array): void;
  close(): void;
}

export type DatagramHandler = (srcNode: NodeId, srcPort: number, data: Uint8Array) => void;

export interface SessionService {
  listen(port: number, link: LinkType, backlog: number): Listener;
  connect(node: NodeId, port: number, link: LinkType): Promise<StreamSession>;
  openDatagram(port: number, link: LinkType, onDatagram: DatagramHandler): DatagramSocket;
  sessions(): SessionInfo[];
  /** Closes every session and listener (SIGTERM); resolves when the peers have been told. */
  shutdown(): Promise<void>;
  /**
   * The client server hands over a batch of frames (one client-socket read): stream writes until
   * `uncork` may be held and sent together, in full segments (`OverlayNode.cork`).
   */
  cork?(): void;
  /** The batch is over: send what the writes since `cork` left unsent. */
  uncork?(): void;
}
