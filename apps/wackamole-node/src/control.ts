/**
 * wackamole-node's control socket: the newline-JSON server of @spines-ts/daemon-kit (mode 0600, its
 * folder created 0700) with this daemon's bounds; the commands are the daemon's (daemon.ts).
 */

import { type ControlHandler, ControlServer as KitControlServer } from "@spines-ts/daemon-kit";
import type { Logger } from "@spines-ts/primitives";

export {
  ControlError,
  ControlErrorCode,
  type ControlHandler,
  type ControlStats,
} from "@spines-ts/daemon-kit";

/** Longest request line (bytes of UTF-16 text, close enough for JSON). */
export const MAX_CONTROL_LINE = 16 * 1024;
/** Requests read but not answered, per connection, before its input is paused. */
export const MAX_PENDING_REQUESTS = 64;
/** Reply bytes queued towards one client before its input is paused (then: drain or disconnect). */
export const MAX_QUEUED_REPLY_BYTES = 1 << 20;

export class ControlServer extends KitControlServer {
  constructor(opts: { commands: Record<string, ControlHandler>; log: Logger; maxConnections: number }) {
    super({
      ...opts,
      maxLineBytes: MAX_CONTROL_LINE,
      maxPendingRequests: MAX_PENDING_REQUESTS,
      maxQueueBytes: MAX_QUEUED_REPLY_BYTES,
      dirMode: 0o700,
    });
  }
}
