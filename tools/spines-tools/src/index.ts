/**
 * @packageDocumentation
 * Command-line tools for spines-node, each a bin of this package and a `main(argv, io)` here:
 * `spinesctl` (the control socket), `spines-ping` and `spines-traceroute` (round trips to each
 * daemon's echo service on datagram port 7, the path from the daemon's link-state routes), and
 * `spines-send` / `spines-recv` (traffic with latency, jitter, loss and throughput). Exit codes: 0
 * ok, 1 runtime failure, 2 bad usage.
 */
export { Exit, type Io, UsageError } from "./cli.ts";
export { ControlClient, ControlError } from "./control.ts";
export { main as spinesPing } from "./spines-ping.ts";
export { main as spinesRecv } from "./spines-recv.ts";
export { main as spinesSend } from "./spines-send.ts";
export { main as spinesTraceroute } from "./spines-traceroute.ts";
export { main as spinesctl } from "./spinesctl.ts";
export { HEADER_BYTES, RunStats, readHeader, type Summary, writeHeader } from "./traffic.ts";
