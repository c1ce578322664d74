/** The control-socket client lives in @spines-ts/daemon-kit (shared with spines-node). */
export { ControlClient, type ControlReply } from "@spines-ts/daemon-kit";
