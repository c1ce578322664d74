/**
 * The gratuitous announcements of the Linux driver as Ethernet frames, for a runner that sends them
 * from a raw-packet sender that runs all along instead of starting `arping` / `na6` per packet
 * (docs/vip.md §5.2). Pure functions: the driver still asks for the commands; a runner that can
 * send frames recognises the exact commands the driver emits ({@link parseAnnouncement}) and sends
 * the same packet ({@link announcementFrame}).
 *
 * - `arping -q -U -c 1 -I IF VIP`: an ARP request from VIP for VIP, broadcast (RFC 5227 §2.4
 *   announcement form, as iputils sends it: target hardware address all ones);
 * - `arping -q -A -c 1 -I IF VIP`: the same as an ARP reply;
 * - `na6 -i IF -s VIP -d ff02::1 -t VIP -o -e`: an unsolicited neighbour advertisement to all
 *   nodes with the override flag and the target link-layer address option (RFC 4861 §7.2.6).
 */
import { Address4, Address6 } from "ip-address";

export type AnnouncementKind = "arp-request" | "arp-reply" | "na";

export interface Announcement {
  readonly kind: AnnouncementKind;
  readonly iface: string;
  /** The VIP (IPv4 for ARP, IPv6 for NA), as in the command. */
  readonly address: string;
}

/** Bytes of each frame kind (ARP padded to the 60-byte Ethernet minimum; NA exactly 86). */
export const FRAME_BYTES: Readonly<Record<AnnouncementKind, number>> = {
  "arp-request": 60,
  "arp-reply": 60,
  na: 86,
};

const IFACE = /^[A-Za-z0-9_.:@-]{1,15}$/;

function valid4(a: string): boolean {
  return Address4.isValid(a) && !a.includes("/");
}

function valid6(a: string): boolean {
  return Address6.isValid(a) && !a.includes("/");
}

/**
 * The announcement a command stands for, if it is exactly one of the forms the driver emits
 * (anything else, e.g. a direct notification with `-s`, is undefined: run it as a command).
 */
export function parseAnnouncement(argv: readonly string[]): Announcement | undefined {
  if (argv.length === 8 && argv[0] === "arping" && argv[1] === "-q" && argv[3] === "-c" && argv[4] === "1") {
    const kind = argv[2] === "-U" ? "arp-request" : argv[2] === "-A" ? "arp-reply" : undefined;
    const iface = argv[6] as string;
    const address = argv[7] as string;
    if (kind === undefined || argv[5] !== "-I" || !IFACE.test(iface) || !valid4(address)) return undefined;
    return { kind, iface, address };
  }
  if (
    argv.length === 11 &&
    argv[0] === "na6" &&
    argv[1] === "-i" &&
    argv[3] === "-s" &&
    argv[5] === "-d" &&
    argv[6] === "ff02::1" &&
    argv[7] === "-t" &&
    argv[8] === argv[4] &&
    argv[9] === "-o" &&
    argv[10] === "-e"
  ) {
    const iface = argv[2] as string;
    const address = argv[4] as string;
    if (!IFACE.test(iface) || !valid6(address)) return undefined;
    return { kind: "na", iface, address };
  }
  return undefined;
}

/** The command of an announcement (the inverse of {@link parseAnnouncement}). */
export function announcementArgv(a: Announcement): string[] {
  if (a.kind === "na")
    return ["na6", "-i", a.iface, "-s", a.address, "-d", "ff02::1", "-t", a.address, "-o", "-e"];
  return ["arping", "-q", a.kind === "arp-request" ? "-U" : "-A", "-c", "1", "-I", a.iface, a.address];
}

/** "aa:bb:cc:dd:ee:ff" as 6 bytes, or undefined. */
export function parseMac(mac: string): Uint8Array | undefined {
  const parts = mac.trim().split(":");
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) return undefined;
  return new Uint8Array(parts.map((p) => Number.parseInt(p, 16)));
}

function ones(x: number): number {
  let s = x;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The Internet checksum (RFC 1071) of `parts`, each of even length except possibly the last. */
function checksum(parts: readonly Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i + 1 < p.length; i += 2) sum += ((p[i] as number) << 8) | (p[i + 1] as number);
    if (p.length % 2 === 1) sum += (p[p.length - 1] as number) << 8;
    sum = ones(sum);
  }
  return ~ones(sum) & 0xffff;
}

/** The Ethernet frame of announcement `a` sent from the interface with hardware address `mac`. */
export function announcementFrame(a: Announcement, mac: Uint8Array): Uint8Array {
  if (mac.length !== 6) throw new RangeError("mac must be 6 bytes");
  const f = new Uint8Array(FRAME_BYTES[a.kind]);
  const v = new DataView(f.buffer);
  if (a.kind !== "na") {
    const ip = new Address4(a.address).toArray();
    f.fill(0xff, 0, 6); // broadcast
    f.set(mac, 6);
    v.setUint16(12, 0x0806); // ARP
    v.setUint16(14, 1); // hardware: Ethernet
    v.setUint16(16, 0x0800); // protocol: IPv4
    f[18] = 6;
    f[19] = 4;
    v.setUint16(20, a.kind === "arp-request" ? 1 : 2);
    f.set(mac, 22); // sender hardware address
    f.set(ip, 28); // sender protocol address: the VIP
    f.fill(0xff, 32, 38); // target hardware address (as iputils arping sends it)
    f.set(ip, 38); // target protocol address: the VIP
    return f; // bytes 42..59: Ethernet padding, zero
  }
  const src = new Uint8Array(new Address6(a.address).toUnsignedByteArray().slice(-16));
  const padded = new Uint8Array(16);
  padded.set(src, 16 - src.length);
  const dst = new Uint8Array(16);
  dst[0] = 0xff;
  dst[1] = 0x02;
  dst[15] = 0x01; // ff02::1, all nodes
  f.set([0x33, 0x33, 0, 0, 0, 1], 0);
  f.set(mac, 6);
  v.setUint16(12, 0x86dd); // IPv6
  // IPv6 header
  f[14] = 0x60;
  v.setUint16(18, 32); // payload length: ICMPv6 NA (24) + target link-layer option (8)
  f[20] = 58; // next header: ICMPv6
  f[21] = 255; // hop limit (RFC 4861 requires 255)
  f.set(padded, 22);
  f.set(dst, 38);
  // ICMPv6 neighbour advertisement
  const icmp = 54;
  f[icmp] = 136;
  f[icmp + 1] = 0;
  f[icmp + 4] = 0x20; // flags: Override (not Router, not Solicited)
  f.set(padded, icmp + 8); // target address
  f[icmp + 24] = 2; // option: target link-layer address
  f[icmp + 25] = 1; // length in units of 8 bytes
  f.set(mac, icmp + 26);
  const pseudo = new Uint8Array(40);
  pseudo.set(padded, 0);
  pseudo.set(dst, 16);
  new DataView(pseudo.buffer).setUint32(32, 32);
  pseudo[39] = 58;
  v.setUint16(icmp + 2, checksum([pseudo, f.subarray(icmp, icmp + 32)]));
  return f;
}
