import { isIP, isIPv4 } from "node:net";
import { parseHostPort } from "@spines-ts/daemon-kit";
import type { NodeId } from "@spines-ts/primitives";

/** A UDP or TCP endpoint: an IP literal (v4 or v6, without brackets) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Why an address string could not be parsed (`ERR_ADDRESS_SYNTAX`); the caller wraps it into a ConfigError with its source. */
export { AddressSyntaxError } from "@spines-ts/daemon-kit";

/**
 * Parses `host:port`, `[v6]:port`, or (when `defaultPort` is given) a bare `host` / `[v6]`.
 * `host` must be an IP literal or `localhost` (which becomes 127.0.0.1): a daemon's peers are
 * addresses, not names that might resolve differently later.
 */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint {
  const { host, port } = parseHostPort(text, defaultPort);
  return { address: host, port };
}

export function formatEndpoint(ep: Endpoint): string {
  return isIP(ep.address) === 6 ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
}

/** Strips the `::ffff:` prefix a dual-stack socket puts on IPv4 peers. */
export function canonicalAddress(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith("::ffff:") && isIPv4(lower.slice(7))) return lower.slice(7);
  return lower;
}

export function endpointKey(address: string, port: number): string {
  return `${canonicalAddress(address)}|${port}`;
}

export const MIN_NODE_ID = 1;
export const MAX_NODE_ID = 0xfffffffe;

export function isNodeId(n: unknown): n is NodeId {
  return typeof n === "number" && Number.isInteger(n) && n >= MIN_NODE_ID && n <= MAX_NODE_ID;
}

/** Parses a node id written as a decimal integer or as a dotted IPv4 address (Spines' convention). */
export function parseNodeId(text: string): NodeId | undefined {
  const s = text.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return isNodeId(n) ? n : undefined;
  }
  if (isIPv4(s)) {
    const n = ipv4ToUint32(s);
    return isNodeId(n) ? n : undefined;
  }
  return undefined;
}

export function ipv4ToUint32(ip: string): number {
  const parts = ip.split(".").map(Number);
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function uint32ToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/**
 * The default node id for an endpoint. As in Spines, a specific IPv4 address is its own id. Spines
 * cannot run two daemons on one address; we can, so the port is mixed in when it is not the default
 * port, and IPv6 or wildcard addresses get a 32-bit FNV-1a hash of `address|port`. Set `--id` when
 * ids must be stable across address changes.
 */
export function defaultNodeId(ep: Endpoint, defaultPort: number): NodeId {
  const addr = canonicalAddress(ep.address);
  if (isIPv4(addr) && addr !== "0.0.0.0" && ep.port === defaultPort) {
    const n = ipv4ToUint32(addr);
    if (isNodeId(n)) return n;
  }
  let h = 0x811c9dc5;
  for (const ch of `${addr}|${ep.port}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return isNodeId(h) ? h : 1;
}
