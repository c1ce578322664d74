/**
 * @packageDocumentation
 * wackamole-node: the N-way IP fail-over daemon of spines-ts (after Wackamole, Johns Hopkins) and
 * its control tool. The daemon runs a `VipNode` of `@spines-ts/vip` (with its `MembershipNode`) on a
 * `@spines-ts/node-host` `UdpHost`; see README.md and docs/wackamole-node.md.
 */
export { ControlClient, type ControlReply, renderMetrics } from "@spines-ts/daemon-kit";
export * from "./config.ts";
export { ControlError, ControlErrorCode, ControlServer, MAX_CONTROL_LINE } from "./control.ts";
export { type ListEntry, type StatusResult, WackamoleDaemon } from "./daemon.ts";
export { generateKeyFile, parseKeyText, readKeyFile } from "./keyfile.ts";
export { wackactl } from "./wackactl.ts";
export { importWackamoleConf, parseWackamoleConf } from "./wackamole-conf.ts";
