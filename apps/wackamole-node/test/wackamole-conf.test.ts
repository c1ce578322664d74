import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfigText } from "../src/config.ts";
import { importWackamoleConf, parseWackamoleConf } from "../src/wackamole-conf.ts";
import { DAEMON_BIN, execFileP, tmp } from "./helpers.ts";

const FIX = join(import.meta.dirname, "fixtures");
const sample = readFileSync(join(FIX, "wackamole.conf"), "utf8");

describe("classic wackamole.conf parser", () => {
  it("reads every directive of a realistic sample", () => {
    const c = parseWackamoleConf(sample, "wackamole.conf");
    expect(c.spread).toEqual({ port: 4803, host: undefined });
    expect(c.spreadRetryMs).toBe(5000);
    expect(c.group).toBe("wack1");
    expect(c.control).toBe("/var/run/wack.it");
    expect(c.matureMs).toBe(5000);
    expect(c.balance).toEqual({ perRound: "all", intervalMs: 4000 });
    expect(c.arpCacheMs).toBe(90_000);
    expect(c.prefer).toEqual([]);
    expect(c.vifs.length).toBe(5);
    expect(c.vifs[3]).toEqual([{ iface: "eth0", address: "192.168.12.18", prefixLength: 32, hint: 24 }]);
    expect(c.vifs[4]?.map((a) => `${a.iface}:${a.address}`)).toEqual(["eth0:192.168.12.1", "eth1:10.2.0.1"]);
    expect(c.notify?.map((n) => n.kind)).toEqual(["address", "address", "arp-cache"]);
    expect(c.notify?.[1]?.throttle).toBe(4);
    expect(c.notify?.[2]?.ping).toBe(true);
    expect(c.ignored.map((i) => i.directive)).toEqual(["RunDynamic", "LogFacility"]);
  });

  it("keywords are case-insensitive; times in s, m, h; Prefer names a VIF; Notify none", () => {
    const c = parseWackamoleConf(readFileSync(join(FIX, "wackamole-prefer.conf"), "utf8"));
    expect(c.spread).toEqual({ port: 4900, host: "127.0.0.1" });
    expect(c.matureMs).toBe(120_000);
    expect(c.balance).toEqual({ perRound: 2, intervalMs: 30_000 });
    expect(c.prefer?.map((p) => p.address)).toEqual(["198.51.100.12"]);
    expect(c.notify).toEqual([]);
    expect(parseWackamoleConf("VIFs { eth0:10.0.0.1 }\nMature = 1h").matureMs).toBe(3_600_000);
  });

  it("errors name the file, line and directive", () => {
    const cases: [string, RegExp][] = [
      [
        "Group = g\nFrobnicate = 3\nVIFs { eth0:10.0.0.1 }",
        /f\.conf:2: \(directive\): expected a wackamole\.conf directive/,
      ],
      ["Mature = soon\nVIFs { eth0:10.0.0.1 }", /f\.conf:1: Mature: expected a time/],
      ["VIFs {\n eth0:10.0.0.300/32\n}", /f\.conf:2: VIFs: expected an IPv4 address/],
      ["VIFs {\n www.example.com\n}", /f\.conf:2: VIFs: expected an address .*hostnames are not resolved/],
      ["VIFs { eth0:10.0.0.1", /f\.conf:1: VIFs: .*found "end of file"/],
      ["Group = g", /f\.conf: VirtualInterfaces: expected at least one virtual interface/],
      [
        "Balance { AcquisitionsPerRound = many }\nVIFs { eth0:10.0.0.1 }",
        /f\.conf:1: Balance\.AcquisitionsPerRound/,
      ],
      ["Notify { eth0:10.0.0.9 throttle x }\nVIFs { eth0:10.0.0.1 }", /f\.conf:1: Notify\.throttle/],
    ];
    for (const [text, re] of cases) {
      let err: unknown;
      try {
        parseWackamoleConf(text, "f.conf");
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(ConfigError);
      expect((err as Error).message, text).toMatch(re);
    }
    expect(() => importWackamoleConf("Prefer eth0:10.9.9.9/32\nVIFs { eth0:10.0.0.1 }", "f.conf")).toThrow(
      /Prefer: expected an address of a virtual interface/,
    );
  });

  it("the imported YAML is a valid wackamole-node config with the same table", () => {
    const yaml = importWackamoleConf(sample, "wackamole.conf");
    expect(yaml).toMatch(/^# Imported from wackamole\.conf/);
    expect(yaml).toMatch(/# note: RunDynamic \(line \d+\) not imported/);
    expect(yaml).toMatch(/# note: nNN network hints dropped/);
    const cfg = parseConfigText(yaml, "imported.yaml");
    expect(cfg.group).toBe("wack1");
    expect(cfg.bind).toEqual({ host: "0.0.0.0", port: 4803 });
    expect(cfg.control).toBe("/var/run/wack.it");
    expect(cfg.vips?.groups.map((g) => g.name)).toEqual([
      "192.168.12.15",
      "192.168.12.16",
      "192.168.12.17",
      "192.168.12.18",
      "192.168.12.1",
    ]);
    expect(cfg.vips?.groups[4]?.addresses).toEqual(["eth0 192.168.12.1/32", "eth1 10.2.0.1/32"]);
    expect(cfg.vips?.balance).toEqual({ mode: "immediate" });
    expect(cfg.vips?.matureMs).toBe(5000);
    expect(cfg.vips?.neighborShareMs).toBe(90_000);
    expect(cfg.notify).toEqual([
      { iface: "eth0", address: "192.168.12.254/32" },
      { iface: "eth1", address: "10.2.0.0/29", throttle: 4 },
    ]);
    const prefer = parse(importWackamoleConf(readFileSync(join(FIX, "wackamole-prefer.conf"), "utf8")));
    expect(prefer.vips.prefer).toEqual(["198.51.100.12"]);
    expect(prefer.vips.balance).toEqual({ mode: "periodic", intervalMs: 30_000, maxMoves: 2 });
  });

  it("`wackamole-node --import-wackamole-conf FILE` prints it, and --check accepts the result", async () => {
    const r = await execFileP(process.execPath, [
      DAEMON_BIN,
      "--import-wackamole-conf",
      join(FIX, "wackamole.conf"),
    ]);
    expect(r.stdout).toContain("group: wack1");
    const dir = tmp();
    const file = join(dir, "imported.yaml");
    writeFileSync(file, r.stdout);
    const check = await execFileP(process.execPath, [DAEMON_BIN, "--config", file, "--check"]);
    expect(check.stdout).toMatch(/ok \(node 1, 5 groups/);
    const bad = await execFileP(process.execPath, [
      DAEMON_BIN,
      "--import-wackamole-conf",
      join(dir, "missing.conf"),
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr).toMatch(
      /missing\.conf: \(file\): expected a readable file, found "ENOENT"/,
    );
  });
});
