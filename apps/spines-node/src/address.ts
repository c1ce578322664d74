import { isIP, isIPv4 } from "node:net";
import type { NodeId } from "@spines-ts/primitives";

/** A UDP or TCP endpoint: an IP literal (v4 or v6, without brackets) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Why an address string could not be parsed; the caller wraps it into a ConfigError with its source. */
export class AddressSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddressSyntaxError";
  }
}

/**
 * Parses `host:port`, `[v6]:port`, or (when `defaultPort` is given) a bare `host` / `[v6]`.
 * `host` must be an IP literal or `localhost` (which becomes 127.0.0.1): a daemon's peers are
 * addresses, not names that might resolve differently later.
 */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint {
  const s = text.trim();
  let host: string;
  let portText: string | undefined;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) throw new AddressSyntaxError(`missing "]" in ${JSON.stringify(text)}`);
    host = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":"))
        throw new AddressSyntaxError(`expected ":port" after "]" in ${JSON.stringify(text)}`);
      portText = rest.slice(1);
    }
  } else {
    const colons = s.split(":").length - 1;
    if (colons === 1) {
      const i = s.indexOf(":");
      host = s.slice(0, i);
      portText = s.slice(i + 1);
    } else if (colons === 0) {
      host = s;
    } else {
      throw new AddressSyntaxError(
        `IPv6 addresses need brackets: "[${s}]:port", got ${JSON.stringify(text)}`,
      );
    }
  }
  if (host === "localhost") host = "127.0.0.1";
  if (isIP(host) === 0)
    throw new AddressSyntaxError(`${JSON.stringify(host)} is not an IPv4 or IPv6 address`);
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw new AddressSyntaxError(`missing ":port" in ${JSON.stringify(text)}`);
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText)) throw new AddressSyntaxError(`bad port ${JSON.stringify(portText)}`);
    port = Number(portText);
    if (port > 65535) throw new AddressSyntaxError(`port ${port} is above 65535`);
  }
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
