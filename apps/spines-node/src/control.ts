/**
 * spines-node's control socket: the generic newline-JSON server of @spines-ts/daemon-kit with its
 * defaults (64 KiB lines, 256 pending requests, 4 MiB of queued replies, `clientStallMs`); the
 * commands are the daemon's (daemon.ts).
 */
export {
  argNumber,
  argString,
  CONTROL_QUEUE_BYTES,
  CONTROL_STALL_MS,
  ControlError,
  ControlErrorCode,
  type ControlHandler,
  ControlServer,
  type ControlStats,
  MAX_CONTROL_LINE_BYTES,
  MAX_PENDING_REQUESTS,
} from "@spines-ts/daemon-kit";
