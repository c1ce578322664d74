import { describe, expect, it } from "vitest";
import {
  announcementArgv,
  announcementFrame,
  FRAME_BYTES,
  parseAnnouncement,
  parseMac,
} from "../src/linux.ts";

const MAC = parseMac("de:f2:80:7a:b6:11") as Uint8Array;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("announcement frames", () => {
  it("recognises exactly the gratuitous commands the driver emits", () => {
    expect(parseAnnouncement(["arping", "-q", "-U", "-c", "1", "-I", "eth0", "10.0.0.9"])).toEqual({
      kind: "arp-request",
      iface: "eth0",
      address: "10.0.0.9",
    });
    expect(parseAnnouncement(["arping", "-q", "-A", "-c", "1", "-I", "eth0", "10.0.0.9"])?.kind).toBe(
      "arp-reply",
    );
    expect(
      parseAnnouncement(["na6", "-i", "eth0", "-s", "fd00::9", "-d", "ff02::1", "-t", "fd00::9", "-o", "-e"]),
    ).toEqual({ kind: "na", iface: "eth0", address: "fd00::9" });
    for (const a of [
      { kind: "arp-request", iface: "eth0", address: "10.0.0.9" },
      { kind: "arp-reply", iface: "eth0", address: "10.0.0.9" },
      { kind: "na", iface: "eth0", address: "fd00::9" },
    ] as const)
      expect(parseAnnouncement(announcementArgv(a))).toEqual(a);
    // direct notifications, other counts, bad addresses or names: not frames
    for (const argv of [
      ["arping", "-q", "-c", "1", "-w", "1", "-s", "10.0.0.9", "-I", "eth0", "10.0.0.1"],
      ["arping", "-q", "-U", "-c", "3", "-I", "eth0", "10.0.0.9"],
      ["arping", "-q", "-U", "-c", "1", "-I", "eth0", "10.0.0.999"],
      ["arping", "-q", "-U", "-c", "1", "-I", "eth0;reboot", "10.0.0.9"],
      ["arping", "-q", "-U", "-c", "1", "-I", "eth0", "fd00::9"],
      ["na6", "-i", "eth0", "-s", "fd00::9", "-d", "ff02::1", "-t", "fd00::8", "-o", "-e"],
      ["ndisc6", "-q", "-1", "-r", "1", "-w", "300", "-s", "fd00::9", "fd00::1", "eth0"],
    ])
      expect(parseAnnouncement(argv)).toBeUndefined();
  });

  it("builds the ARP request arping -U sends (padded to 60 bytes)", () => {
    const f = announcementFrame({ kind: "arp-request", iface: "eth0", address: "10.251.0.9" }, MAC);
    expect(f.length).toBe(FRAME_BYTES["arp-request"]);
    // as captured from `arping -U` (iputils): ff..ff < mac, 0806, request, sender = target = VIP
    expect(hex(f.subarray(0, 42))).toBe(
      `ffffffffffff${"def2807ab611"}0806` +
        `0001080006040001` +
        `def2807ab611` +
        `0afb0009` +
        `ffffffffffff` +
        `0afb0009`,
    );
    expect(f.subarray(42).every((b) => b === 0)).toBe(true);
    const r = announcementFrame({ kind: "arp-reply", iface: "eth0", address: "10.251.0.9" }, MAC);
    expect(r[21]).toBe(2);
    expect(hex(r.subarray(22, 42))).toBe(hex(f.subarray(22, 42)));
  });

  it("builds an unsolicited NA with a correct ICMPv6 checksum", () => {
    const f = announcementFrame({ kind: "na", iface: "eth0", address: "fd40:240::101" }, MAC);
    expect(f.length).toBe(86);
    expect(hex(f.subarray(0, 14))).toBe("333300000001def2807ab61186dd");
    expect(f[20]).toBe(58);
    expect(f[21]).toBe(255);
    expect(f[54]).toBe(136);
    expect(f[58]).toBe(0x20); // override only
    expect(hex(f.subarray(62, 78))).toBe("fd400240000000000000000000000101");
    expect(hex(f.subarray(78, 86))).toBe("0201def2807ab611");
    // the one's-complement sum over pseudo-header and message, checksum included, is 0xffff
    const pseudo = Buffer.concat([Buffer.from(f.subarray(22, 54)), Buffer.from([0, 0, 0, 32, 0, 0, 0, 58])]);
    const all = Buffer.concat([pseudo, Buffer.from(f.subarray(54, 86))]);
    let s = 0;
    for (let i = 0; i < all.length; i += 2) s += all.readUInt16BE(i);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    expect(s).toBe(0xffff);
    // a different address changes the checksum
    const g = announcementFrame({ kind: "na", iface: "eth0", address: "fd40:240::102" }, MAC);
    expect(hex(g.subarray(56, 58))).not.toBe(hex(f.subarray(56, 58)));
  });

  it("rejects bad hardware addresses", () => {
    expect(parseMac("de:f2:80:7a:b6")).toBeUndefined();
    expect(parseMac("zz:f2:80:7a:b6:11")).toBeUndefined();
    expect(() =>
      announcementFrame({ kind: "arp-reply", iface: "e", address: "10.0.0.1" }, new Uint8Array(5)),
    ).toThrow(RangeError);
  });
});
