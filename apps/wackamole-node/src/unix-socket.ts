/** The local-socket helpers live in @spines-ts/daemon-kit (shared with spines-node). */
export {
  closeServer,
  destroyAfter,
  listenTcp,
  listenUnix,
  MAX_REFUSING,
  refuse,
  SocketInUseError,
} from "@spines-ts/daemon-kit";
