import { SpinesError } from "@spines-ts/primitives";

/** Stable codes of the session layer's errors. */
export const SessionErrorCode = {
  ConnectTimeout: "ERR_SESSION_CONNECT_TIMEOUT",
  PeerDead: "ERR_SESSION_PEER_DEAD",
  Reset: "ERR_SESSION_RESET",
  Refused: "ERR_SESSION_REFUSED",
  State: "ERR_SESSION_STATE",
  PortInUse: "ERR_SESSION_PORT_IN_USE",
  DatagramTimeout: "ERR_SESSION_DATAGRAM_TIMEOUT",
  DatagramUnreachable: "ERR_SESSION_DATAGRAM_UNREACHABLE",
} as const;
export type SessionErrorCode = (typeof SessionErrorCode)[keyof typeof SessionErrorCode];

/** The peer did not answer the open within `connectTimeoutMs`. */
export class ConnectTimeoutError extends SpinesError {
  readonly timeoutMs: number;
  constructor(node: number, port: number, timeoutMs: number) {
    super(SessionErrorCode.ConnectTimeout, `no answer from ${node}:${port} within ${timeoutMs} ms`);
    this.name = "ConnectTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** Nothing was heard from the peer for `deadPeerTimeoutMs`: the session is gone. */
export class PeerDeadError extends SpinesError {
  readonly silentMs: number;
  constructor(node: number, port: number, silentMs: number) {
    super(SessionErrorCode.PeerDead, `peer ${node}:${port} silent for ${silentMs} ms, session ended`);
    this.name = "PeerDeadError";
    this.silentMs = silentMs;
  }
}

/** The peer reset the session (or has no state for it). `reason` is a `ResetReason` value. */
export class SessionResetError extends SpinesError {
  readonly reason: number;
  constructor(reason: number, message: string) {
    super(SessionErrorCode.Reset, message);
    this.name = "SessionResetError";
    this.reason = reason;
  }
}

/** The destination refused the open: nobody listens there, or it is full. */
export class ConnectionRefusedError extends SpinesError {
  readonly reason: number;
  constructor(node: number, port: number, reason: number) {
    super(SessionErrorCode.Refused, `${node}:${port} refused the session (reason ${reason})`);
    this.name = "ConnectionRefusedError";
    this.reason = reason;
  }
}

/** An application call that the session's state does not allow (unknown id, write after shutdown...). */
export class SessionStateError extends SpinesError {
  constructor(message: string) {
    super(SessionErrorCode.State, message);
    this.name = "SessionStateError";
  }
}

/** The virtual port is already bound, listened on or used by a session. */
export class PortInUseError extends SpinesError {
  readonly port: number;
  constructor(port: number) {
    super(SessionErrorCode.PortInUse, `virtual port ${port} is in use`);
    this.name = "PortInUseError";
    this.port = port;
  }
}

/** A reliable datagram was not acknowledged within `datagramTimeoutMs`. */
export class DatagramTimeoutError extends SpinesError {
  constructor(node: number, port: number, timeoutMs: number) {
    super(
      SessionErrorCode.DatagramTimeout,
      `datagram to ${node}:${port} not acknowledged in ${timeoutMs} ms`,
    );
    this.name = "DatagramTimeoutError";
  }
}

/** Nothing is bound at the reliable datagram's destination port. */
export class DatagramUnreachableError extends SpinesError {
  constructor(node: number, port: number) {
    super(SessionErrorCode.DatagramUnreachable, `nothing bound at ${node}:${port}`);
    this.name = "DatagramUnreachableError";
  }
}
