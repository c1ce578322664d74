import { isIP, isIPv4 } from "node:net";

/** A UDP endpoint: an IP literal (v4 or v6, without brackets) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** `1.2.3.4:5` or `[::1]:5`. */
export function formatEndpoint(ep: Endpoint): string {
  return isIP(ep.address) === 6 ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
}

/** Lower-cases an address and strips the `::ffff:` prefix a dual-stack socket puts on IPv4 peers. */
export function canonicalAddress(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith("::ffff:") && isIPv4(lower.slice(7))) return lower.slice(7);
  return lower;
}

/** A map key for an endpoint that is the same for every spelling of its address. */
export function endpointKey(address: string, port: number): string {
  return `${canonicalAddress(address)}|${port}`;
}
