/**
 * The client library now lives in `@spines-ts/client` (packages/client); this module re-exports
 * what it used to hold, so `@spines-ts/spines-node/client` keeps working.
 */
export {
  ClientErrorCode,
  ClientProtocolError,
  ClosedReason,
  type DaemonTarget as ConnectTarget,
  type DatagramSource,
  LinkType,
  SpinesClient,
  SpinesDatagramSocket,
  SpinesListener,
  SpinesStream,
  type StreamInfo,
} from "@spines-ts/client";
