/** The local-socket helpers live in @spines-ts/daemon-kit (shared with wackamole-node). */
export {
  closeServer,
  destroyAfter,
  listenTcp,
  listenUnix,
  MAX_REFUSING,
  OVERFLOW_FACTOR,
  refuse,
  SlowPeerGuard,
  type SlowPeerOptions,
  SocketInUseError,
} from "@spines-ts/daemon-kit";
