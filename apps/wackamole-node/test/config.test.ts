import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { parseArgs, parseConfigText, resolveConfig } from "../src/config.ts";
import { generateKeyFile, parseKeyText, readKeyFile } from "../src/keyfile.ts";
import { DAEMON_BIN, execFileP, tmp } from "./helpers.ts";

const MIN = `id: 1
bind: { host: 127.0.0.1, port: 4803 }
vips:
  groups:
    - { name: web, addresses: ["eth0 10.0.0.100/24"] }
`;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("no error thrown");
}

describe("config file validation", () => {
  it("accepts the contract's full example", () => {
    const text = readFileSync(join(import.meta.dirname, "..", "examples", "node1.yaml"), "utf8");
    const c = parseConfigText(text, "node1.yaml");
    expect(c.id).toBe(1);
    expect(c.vips?.groups.length).toBeGreaterThan(0);
    expect(c.auth?.keyFile).toMatch(/cluster\.key$/);
  });

  it("applies defaults", () => {
    const c = parseConfigText(MIN, "m.yaml");
    expect(c.vips?.matureMs).toBe(5000);
    expect(c.vips?.holdOffMs).toBe(10_000);
    expect(c.vips?.balance).toEqual({ mode: "periodic", intervalMs: 4000, movesPerRound: 1 });
  });

  const bad: [string, string, RegExp][] = [
    [
      "unknown top-level key",
      `${MIN}colour: blue\n`,
      /^f\.yaml:6: colour: expected one of id, group, .*found "an unknown key"/,
    ],
    [
      "unknown nested key",
      MIN.replace("port: 4803", "port: 4803, hots: x"),
      /^f\.yaml:2: bind\.hots: expected one of host, port/,
    ],
    [
      "bad id",
      MIN.replace("id: 1", "id: 70000"),
      /^f\.yaml:1: id: expected an integer in 1\.\.65535, found 70000/,
    ],
    [
      "id as a string",
      MIN.replace("id: 1", 'id: "one"'),
      /^f\.yaml:1: id: expected an integer in 1\.\.65535/,
    ],
    [
      "bad VIP address (line of the address)",
      MIN.replace("eth0 10.0.0.100/24", "eth0 10.0.0.300/24"),
      /^f\.yaml:5: vips\.groups\[0\]\.addresses\[0\]\.address: expected an IPv4 address/,
    ],
    [
      "VIP without interface",
      MIN.replace("eth0 10.0.0.100/24", "10.0.0.100/24"),
      /vips\.groups\[0\]\.addresses\[0\]: expected "iface address\/len"/,
    ],
    [
      "prefer names no group",
      `${MIN}  prefer: [mail]\n`,
      /^f\.yaml:\d+: vips\.prefer\[0\]: expected the name of a configured group, found "?mail/,
    ],
    [
      "duplicate group name",
      `${MIN}    - { name: web, addresses: ["eth0 10.0.0.101/24"] }\n`,
      /vips\.groups\[1\]\.name: expected a unique group name/,
    ],
    [
      "non-loopback metrics",
      `${MIN}metrics: { listen: "0.0.0.0:9475" }\n`,
      /^f\.yaml:6: metrics\.listen: expected a loopback address/,
    ],
    ["bad profile", `${MIN}profile: turbo\n`, /^f\.yaml:6: profile: expected default\|fast, found "turbo"/],
    ["bad driver", `${MIN}driver: bsd\n`, /^f\.yaml:6: driver: expected linux\|dry-run/],
    [
      "bad balance mode",
      `${MIN}  balance: { mode: sometimes }\n`,
      /vips\.balance\.mode: expected off\|immediate\|periodic/,
    ],
    [
      "interval with immediate",
      `${MIN}  balance: { mode: immediate, intervalMs: 5 }\n`,
      /vips\.balance\.intervalMs: expected no intervalMs with mode immediate/,
    ],
    [
      "track without command",
      `${MIN}track: { intervalMs: 100 }\n`,
      /track\.command: expected a shell command/,
    ],
    [
      "track fall 0",
      `${MIN}track: { command: "true", fall: 0 }\n`,
      /track\.fall: expected an integer in 1\.\.1000, found 0/,
    ],
    ["peers not a list", `${MIN}peers: { id: 2 }\n`, /^f\.yaml:6: peers: expected a list/],
    [
      "duplicate peer",
      `${MIN}peers: [{ id: 2, host: 10.0.0.2 }, { id: 2, host: 10.0.0.3 }]\n`,
      /peers\[1\]\.id: expected a node id not listed before/,
    ],
    [
      "peer host not an address",
      `${MIN}peers: [{ id: 2, host: db.example }]\n`,
      /peers\[0\]\.host: expected an IPv4 or IPv6 address/,
    ],
    [
      "notify target",
      `${MIN}notify: [{ iface: eth0, address: "10.0.0.0/33" }]\n`,
      /notify\[0\]\.address: expected an address or network/,
    ],
    ["YAML syntax", "id: [1\n", /^f\.yaml:\d+:\d+: \(syntax\): expected valid YAML or JSON/],
    ["top level not a mapping", "- 1\n", /^f\.yaml:1: \(root\): expected a mapping/],
    ["log level", `${MIN}log: { level: loud }\n`, /log\.level: expected trace\|debug/],
  ];
  for (const [what, text, re] of bad) {
    it(`rejects: ${what}`, () => {
      const e = errorOf(() => parseConfigText(text, "f.yaml"));
      expect(e.message).toMatch(re);
    });
  }

  it("JSON works too and errors name JSON lines", () => {
    const c = parseConfigText(
      JSON.stringify({ id: 3, vips: { groups: [{ name: "a", addresses: ["eth0 fd00::1/64"] }] } }),
      "f.json",
    );
    expect(c.id).toBe(3);
    const e = errorOf(() => parseConfigText('{\n  "id": 3,\n  "nope": 1\n}', "f.json"));
    expect(e.message).toMatch(/^f\.json:3: nope: expected one of/);
  });
});

describe("flags and resolution", () => {
  it("flags override the file; the node's own entry in peers is dropped", () => {
    const dir = tmp();
    const file = join(dir, "c.yaml");
    writeFileSync(
      file,
      `${MIN}peers:\n  - { id: 1, host: 127.0.0.1, port: 4803 }\n  - { id: 2, host: 127.0.0.2, port: 4803 }\n`,
    );
    const c = resolveConfig(
      parseArgs([
        "--config",
        file,
        "--profile",
        "fast",
        "--driver=dry-run",
        "--bind",
        "127.0.0.1:5000",
        "--log-level",
        "warn",
      ]),
    );
    expect(c.profile).toBe("fast");
    expect(c.driver).toBe("dry-run");
    expect(c.bind).toEqual({ host: "127.0.0.1", port: 5000 });
    expect(c.peers.map((p) => p.id)).toEqual([2]);
    expect(c.logLevel).toBe("warn");
    const c2 = resolveConfig(
      parseArgs(["-c", file, "--id", "2", "--driver", "dry-run", "--bind", "127.0.0.2:4803"]),
    );
    expect(c2.peers.map((p) => p.id)).toEqual([1]);
  });

  it("bad flags are ConfigErrors naming the flag", () => {
    expect(errorOf(() => parseArgs(["--id", "0"])).message).toMatch(
      /^command line: --id: expected an integer node id/,
    );
    expect(errorOf(() => parseArgs(["--metrics", "10.0.0.1:9"])).message).toMatch(
      /--metrics: expected a loopback address/,
    );
    expect(errorOf(() => parseArgs(["--bogus"])).message).toMatch(/--bogus: expected a known option/);
    expect(errorOf(() => parseArgs(["--bind"])).message).toMatch(/--bind: expected a value/);
    expect(errorOf(() => parseArgs(["--profile", "slow"])).message).toMatch(
      /--profile: expected default\|fast/,
    );
    expect(errorOf(() => resolveConfig(parseArgs([]))).message).toMatch(/id: expected this node's id/);
  });

  it("auth.keyFile must exist and must not be readable by group or others", () => {
    const dir = tmp();
    const key = join(dir, "cluster.key");
    const file = join(dir, "c.yaml");
    writeFileSync(file, `${MIN}auth: { keyFile: cluster.key }\ndriver: dry-run\n`);
    expect(errorOf(() => resolveConfig(parseArgs(["-c", file]))).message).toMatch(
      /cluster\.key: auth\.keyFile: expected an existing key file/,
    );
    generateKeyFile(key);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(resolveConfig(parseArgs(["-c", file])).auth?.keyFile).toBe(key);
    chmodSync(key, 0o640);
    expect(errorOf(() => resolveConfig(parseArgs(["-c", file]))).message).toMatch(
      /auth\.keyFile: expected a file only its owner can read \(chmod 600\), found "mode 0640"/,
    );
  });
});

describe("key files", () => {
  it("parses current and next keys; rejects malformed ones", () => {
    const a = "a".repeat(64);
    const b = "b".repeat(64);
    const keys = parseKeyText(`# cluster key\n7 ${a}\n8 ${b}\n`, "k");
    expect(keys.keys.map((k) => k.id)).toEqual([7, 8]);
    expect(keys.current.key.length).toBe(32);
    expect(errorOf(() => parseKeyText(`1 ${a.slice(1)}\n`, "k")).message).toMatch(
      /^k:1: \(key file\): expected 1 or 2 lines "<keyId> <64 hex digits>", found "the key must be exactly 64 hex digits/,
    );
    expect(errorOf(() => parseKeyText(`1 ${a}\n1 ${b}\n`, "k")).message).toMatch(
      /^k:2: .*key id 1 appears twice/,
    );
    expect(errorOf(() => parseKeyText("", "k")).message).toMatch(/^k: .*holds no key/);
    expect(errorOf(() => parseKeyText(`1 ${a}\n2 ${a}\n3 ${a}\n`, "k")).message).toMatch(
      /^k:3: .*at most 2 keys/,
    );
    // key material never appears in an error
    expect(errorOf(() => parseKeyText(`1 ${a}zz\n`, "k")).message).not.toContain(a);
  });

  it("--gen-key writes a 0600 key file and refuses to overwrite one", async () => {
    const dir = tmp();
    const key = join(dir, "k");
    const r = await execFileP(process.execPath, [DAEMON_BIN, "--gen-key", key]);
    expect(r.stdout).toMatch(/wrote/);
    expect(readKeyFile(key).keys.length).toBe(1);
    const again = await execFileP(process.execPath, [DAEMON_BIN, "--gen-key", key]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((again as { code: number }).code).toBe(1);
    expect((again as { stderr: string }).stderr).toMatch(/refusing to overwrite/);
  });
});

describe("the binary", () => {
  it("--help, --version, --check (0 ok, 2 with the error on stderr)", async () => {
    const help = await execFileP(process.execPath, [DAEMON_BIN, "--help"]);
    expect(help.stdout).toMatch(/^Usage: wackamole-node --config FILE/);
    const v = await execFileP(process.execPath, [DAEMON_BIN, "--version"]);
    expect(v.stdout).toMatch(/^wackamole-node \d+\.\d+\.\d+/);
    const dir = tmp();
    const good = join(dir, "good.yaml");
    writeFileSync(good, `${MIN}driver: dry-run\n`);
    const ok = await execFileP(process.execPath, [DAEMON_BIN, "--config", good, "--check"]);
    expect(ok.stdout).toMatch(/good\.yaml: ok \(node 1, 1 groups, 0 peers, driver dry-run\)/);
    const badFile = join(dir, "bad.yaml");
    writeFileSync(badFile, `${MIN}vips2: {}\n`);
    const bad = await execFileP(process.execPath, [DAEMON_BIN, "--config", badFile, "--check"]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr).toMatch(/bad\.yaml:6: vips2: expected one of/);
  });
});
