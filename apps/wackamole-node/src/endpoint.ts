/** `ADDR:PORT` parsing lives in @spines-ts/daemon-kit (shared with spines-node). */
export {
  AddressSyntaxError,
  formatHostPort,
  type HostPort,
  isLoopback,
  parseHostPort,
} from "@spines-ts/daemon-kit";
