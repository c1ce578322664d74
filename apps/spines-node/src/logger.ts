/** spines-node logs pino JSON lines on stderr: the logger lives in @spines-ts/daemon-kit. */
export { createDaemonLogger, type DaemonLogger } from "@spines-ts/daemon-kit";
