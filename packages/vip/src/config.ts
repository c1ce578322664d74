import { ConfigError } from "@spines-ts/primitives";
import { Address4, Address6 } from "ip-address";

/** Most groups a cluster may share (a group's index is a u16 on the wire; the state message stays under 8 KiB). */
export const MAX_GROUPS = 1024;
/** Most addresses in one group. */
export const MAX_ADDRESSES_PER_GROUP = 32;

/** One address of a VIP group as written in a configuration. */
export interface VipAddressInput {
  /** The interface the address goes on, e.g. "eth0" (may differ between members). */
  readonly iface: string;
  /** The address with its prefix length on the interface: "198.51.100.11/32", "2001:db8::11/128". */
  readonly address: string;
}

/**
 * A VIP group ("virtual interface"): addresses that always move together, possibly of both
 * families and on several interfaces (a highly available router's addresses on each of its
 * networks). Strings are accepted as "iface address/len", e.g. "eth0 198.51.100.11/32".
 */
export interface VipGroupInput {
  readonly name: string;
  readonly addresses: readonly (VipAddressInput | string)[];
}

/** A validated address. */
export interface VipAddress {
  readonly iface: string;
  readonly family: 4 | 6;
  /** Canonical text form, without prefix length ("10.0.0.5", "fd00::5"). */
  readonly address: string;
  readonly prefixLength: number;
  /** `${address}/${prefixLength}`. */
  readonly cidr: string;
}

/** A validated group; `index` is its row in the table, the same at every member. */
export interface VipGroup {
  readonly index: number;
  readonly name: string;
  readonly addresses: readonly VipAddress[];
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Parses and validates one address with `ip-address`; throws ConfigError naming `key`. */
export function parseVipAddress(input: VipAddressInput | string, source: string, key: string): VipAddress {
  let iface: string;
  let text: string;
  if (typeof input === "string") {
    const parts = input.trim().split(/\s+/);
    if (parts.length !== 2) throw new ConfigError(source, key, '"iface address/len"', input);
    iface = parts[0] as string;
    text = parts[1] as string;
  } else if (typeof input === "object" && input !== null) {
    iface = input.iface;
    text = input.address;
  } else {
    throw new ConfigError(source, key, "an address object or string", input);
  }
  if (typeof iface !== "string" || !IFNAME.test(iface))
    throw new ConfigError(source, `${key}.iface`, "an interface name (1-15 of A-Z a-z 0-9 _ . -)", iface);
  if (typeof text !== "string") throw new ConfigError(source, `${key}.address`, "an address string", text);
  const hasLen = text.includes("/");
  if (text.includes(":")) {
    let a: Address6;
    try {
      a = new Address6(text);
    } catch {
      throw new ConfigError(source, `${key}.address`, "an IPv6 address with optional /len", text);
    }
    const len = hasLen ? a.subnetMask : 128;
    const address = new Address6(a.addressMinusSuffix ?? text.split("/")[0] ?? "").correctForm();
    return { iface, family: 6, address, prefixLength: len, cidr: `${address}/${len}` };
  }
  let a: Address4;
  try {
    a = new Address4(text);
  } catch {
    throw new ConfigError(source, `${key}.address`, "an IPv4 address with optional /len", text);
  }
  const len = hasLen ? a.subnetMask : 32;
  const address = a.correctForm();
  if (address === "0.0.0.0" || address === "255.255.255.255")
    throw new ConfigError(source, `${key}.address`, "a unicast IPv4 address", text);
  return { iface, family: 4, address, prefixLength: len, cidr: `${address}/${len}` };
}

/** Validates the group table: unique names and addresses, bounds. The order is the table order. */
export function parseVipGroups(input: readonly VipGroupInput[], source = "vip config"): VipGroup[] {
  if (!Array.isArray(input)) throw new ConfigError(source, "groups", "an array of groups", input);
  if (input.length === 0 || input.length > MAX_GROUPS)
    throw new ConfigError(source, "groups", `1..${MAX_GROUPS} groups`, input.length);
  const names = new Set<string>();
  const seen = new Map<string, string>();
  return input.map((g, index) => {
    const key = `groups[${index}]`;
    if (typeof g !== "object" || g === null) throw new ConfigError(source, key, "a group object", g);
    if (typeof g.name !== "string" || g.name.length === 0 || g.name.length > 64)
      throw new ConfigError(source, `${key}.name`, "a name of 1-64 characters", g.name);
    if (names.has(g.name)) throw new ConfigError(source, `${key}.name`, "a unique group name", g.name);
    names.add(g.name);
    if (
      !Array.isArray(g.addresses) ||
      g.addresses.length === 0 ||
      g.addresses.length > MAX_ADDRESSES_PER_GROUP
    )
      throw new ConfigError(
        source,
        `${key}.addresses`,
        `1..${MAX_ADDRESSES_PER_GROUP} addresses`,
        g.addresses,
      );
    const addresses = g.addresses.map((a: VipAddressInput | string, j: number) => {
      const v = parseVipAddress(a, source, `${key}.addresses[${j}]`);
      const prev = seen.get(v.address);
      if (prev !== undefined)
        throw new ConfigError(
          source,
          `${key}.addresses[${j}]`,
          `an address not already in ${prev}`,
          v.address,
        );
      seen.set(v.address, g.name);
      return v;
    });
    return { index, name: g.name, addresses };
  });
}

/**
 * A 32-bit FNV-1a fingerprint of the table (group names and addresses in order; interfaces and
 * prefix lengths may differ between members). Carried in every state message: members whose
 * tables differ cannot share one allocation.
 */
export function tableFingerprint(groups: readonly VipGroup[]): number {
  const text = groups.map((g) => `${g.name}=${g.addresses.map((a) => a.address).join(",")}`).join(";");
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** An address's bytes as lowercase hex (4 or 16 bytes), the key neighbour entries are kept by. */
export function addressKey(address: string): string {
  if (!address.includes(":"))
    return address
      .split(".")
      .map((o) => Number(o).toString(16).padStart(2, "0"))
      .join("");
  return new Address6(address).canonicalForm().replaceAll(":", "");
}
