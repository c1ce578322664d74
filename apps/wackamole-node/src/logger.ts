/** The daemon's logger (@spines-ts/daemon-kit): wackamole-node logs pino JSON lines on stdout. */
import { createDaemonLogger as create, type DaemonLogger, type LogLevel } from "@spines-ts/daemon-kit";

export type { DaemonLogger };

export function createDaemonLogger(level: LogLevel, fd = 1): DaemonLogger {
  return create(level, fd);
}
