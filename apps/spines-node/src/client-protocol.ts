/**
 * The client-protocol codec now lives in `@spines-ts/client/protocol` (packages/client); this module
 * re-exports it for the daemon's older imports.
 */
export * from "@spines-ts/client/protocol";
