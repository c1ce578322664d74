import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { DEFAULT_PORT, HELP, parseArgs, parseConfigText, resolveConfig } from "../src/config.ts";

const dir = mkdtempSync(join(tmpdir(), "spines-node-config-"));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("flags", () => {
  it("parses every option, in both --flag value and --flag=value forms", () => {
    const o = parseArgs([
      "--id",
      "7",
      "--listen=127.0.0.1:9000",
      "-n",
      "8@127.0.0.1:9001",
      "--neighbor",
      "[::1]:9002",
      "--log-level",
      "debug",
      "--control",
      "/tmp/c.ctl",
      "--client-socket",
      "none",
      "--client-tcp",
      "127.0.0.1:8400",
      "--metrics",
      "127.0.0.1:9464",
    ]);
    expect(o.id).toBe(7);
    expect(o.listen).toEqual({ address: "127.0.0.1", port: 9000 });
    expect(o.neighbors[0]).toEqual({ id: 8, endpoint: { address: "127.0.0.1", port: 9001 } });
    expect(o.neighbors[1]?.endpoint).toEqual({ address: "::1", port: 9002 });
    expect(o.logLevel).toBe("debug");
    expect(o.clientSocket).toBe(false);
    expect(o.clientTcp).toEqual({ address: "127.0.0.1", port: 8400 });
    expect(o.metrics?.port).toBe(9464);
  });

  it("accepts a dotted IPv4 node id, as Spines does", () => {
    expect(parseArgs(["--id", "10.0.0.1"]).id).toBe(0x0a000001);
  });

  it.each([
    [["--bogus"], "--bogus"],
    [["--id", "0"], "--id"],
    [["--id", "4294967295"], "--id"],
    [["--listen", "1.2.3.4:99999"], "--listen"],
    [["--listen", "::1:80"], "--listen"],
    [["--neighbor", "x@1.2.3.4:5"], "--neighbor"],
    [["--log-level", "loud"], "--log-level"],
    [["--metrics", "0.0.0.0:9464"], "--metrics"],
    [["--client-tcp", "10.1.1.1:1"], "--client-tcp"],
    [["--id"], "--id"],
    [["--help=yes"], "--help"],
  ])("rejects %j naming the flag", (argv, key) => {
    const e = configError(() => parseArgs(argv));
    expect(e.source).toBe("command line");
    expect(e.key).toBe(key);
    expect(e.code).toBe("ERR_CONFIG");
  });

  it("has help text that names every flag", () => {
    for (const f of [
      "--id",
      "--listen",
      "--neighbor",
      "--config",
      "--log-level",
      "--control",
      "--client-socket",
      "--client-tcp",
      "--metrics",
      "--help",
      "--version",
    ]) {
      expect(HELP).toContain(f);
    }
  });
});

describe("config files", () => {
  it("loads YAML and JSON with the same meaning", () => {
    const yaml = parseConfigText(
      "id: 3\nlisten: 127.0.0.1:9100\nneighbors:\n  - id: 4\n    address: 127.0.0.1:9101\n    emulation: { delayMs: 5, lossPct: 1 }\n  - 5@127.0.0.1:9102\nlogLevel: warn\n",
      "a.yaml",
    );
    const json = parseConfigText(
      JSON.stringify({
        id: 3,
        listen: "127.0.0.1:9100",
        neighbors: [
          { id: 4, address: "127.0.0.1:9101", emulation: { delayMs: 5, lossPct: 1 } },
          "5@127.0.0.1:9102",
        ],
        logLevel: "warn",
      }),
      "a.json",
    );
    expect(yaml).toEqual(json);
    expect(yaml.neighbors.map((n) => n.id)).toEqual([4, 5]);
    expect(yaml.neighbors[0]?.emulation).toEqual({ delayMs: 5, lossPct: 1 });
  });

  it.each([
    ["unknown top-level key", "id: 1\nlisten: 127.0.0.1:1\ncolour: red\n", "colour", 3],
    ["bad id", "id: -4\n", "id", 1],
    ["bad listen", "listen: nowhere\n", "listen", 1],
    ["neighbours not a list", "neighbors: 5\n", "neighbors", 1],
    ["neighbour without address", "neighbors:\n  - id: 2\n", "neighbors[0]", 2],
    ["bad neighbour address", "neighbors:\n  - id: 2\n    address: 1.2.3\n", "neighbors[0].address", 3],
    [
      "unknown neighbour key",
      "neighbors:\n  - id: 2\n    address: 1.2.3.4:5\n    colour: red\n",
      "neighbors[0].colour",
      4,
    ],
    [
      "bad emulation value",
      "neighbors:\n  - id: 2\n    address: 1.2.3.4:5\n    emulation:\n      lossPct: 250\n",
      "neighbors[0].emulation.lossPct",
      5,
    ],
    ["duplicate neighbour", "neighbors:\n  - 2@1.2.3.4:5\n  - 2@1.2.3.4:6\n", "neighbors[1]", 3],
    ["non-loopback metrics", "metrics: 10.0.0.1:9464\n", "metrics", 1],
    ["bad log level", "logLevel: 3\n", "logLevel", 1],
    ["bad limit", "limits:\n  maxClients: 0\n", "limits.maxClients", 2],
    ["bad link setting (checked by link-arq)", "link:\n  mtu: 10\n", "link.mtu", 2],
    ["unknown session setting (checked by session)", "id: 1\nsession:\n  bogus: 1\n", "session.bogus", 3],
    ["session setting against the daemon's defaults", "session:\n  maxRtoMs: 100\n", "session.maxRtoMs", 2],
    ["unknown metric", "metric: fastest\n", "metric", 1],
  ])("%s: ConfigError names the file, line and key", (_name, text, key, line) => {
    const e = configError(() => parseConfigText(text, "/etc/spines/node.yaml"));
    expect(e.key).toBe(key);
    expect(e.source).toBe(`/etc/spines/node.yaml:${line}`);
    expect(e.message).toContain("/etc/spines/node.yaml");
    expect(e.message).toContain("expected");
  });

  it("reports YAML syntax errors with the position", () => {
    const e = configError(() => parseConfigText("id: 1\nneighbors: [1, 2\n", "bad.yaml"));
    expect(e.key).toBe("(syntax)");
    expect(e.source).toMatch(/^bad\.yaml:\d+:\d+$/);
  });

  it("reports a missing file as a ConfigError naming it", () => {
    const e = configError(() => resolveConfig({ ...parseArgs([]), config: join(dir, "missing.yaml") }));
    expect(e.source).toBe(join(dir, "missing.yaml"));
  });

  it("lets flags override the file and add neighbours", () => {
    const p = file(
      "over.yaml",
      "id: 3\nlisten: 127.0.0.1:9100\nneighbors: ['4@127.0.0.1:9101']\nlogLevel: warn\n",
    );
    const c = resolveConfig(
      parseArgs(["--config", p, "--log-level", "debug", "--neighbor", "6@127.0.0.1:9106"]),
      {
        tmpdir: "/run",
      },
    );
    expect(c.logLevel).toBe("debug");
    expect(c.neighbors.map((n) => n.id).sort()).toEqual([4, 6]);
    expect(c.control).toBe("/run/spines-node-9100-3.ctl"); // not a wildcard listen: the id is in the name
    expect(c.configFile).toBe(p);
  });

  it("derives the node id from the listen address as Spines does", () => {
    expect(resolveConfig(parseArgs(["--listen", `10.1.2.3:${DEFAULT_PORT}`])).id).toBe(0x0a010203);
    // Two daemons on one address differ by port.
    const a = resolveConfig(parseArgs(["--listen", "127.0.0.1:9001"])).id;
    const b = resolveConfig(parseArgs(["--listen", "127.0.0.1:9002"])).id;
    expect(a).not.toBe(b);
  });

  it("rejects a neighbour with the node's own id, and IPv6 neighbours on an IPv4 socket", () => {
    expect(configError(() => resolveConfig(parseArgs(["--id", "1", "-n", "1@127.0.0.1:5"]))).key).toBe(
      "neighbors",
    );
    expect(
      configError(() => resolveConfig(parseArgs(["--id", "1", "--listen", "127.0.0.1:5", "-n", "2@[::1]:6"])))
        .key,
    ).toBe("neighbors.2");
    expect(
      resolveConfig(parseArgs(["--id", "1", "--listen", "[::]:5", "-n", "2@[::1]:6", "-n", "3@127.0.0.1:7"]))
        .neighbors,
    ).toHaveLength(2);
  });

  it("imports Hosts and Edges from a spines.conf", () => {
    const conf = join(import.meta.dirname, "fixtures", "spines.conf");
    const p = file(
      "with-conf.yaml",
      `listen: 127.0.0.1:8100\nspinesConf: { file: ${JSON.stringify(conf)}, port: 8100 }\n`,
    );
    const c = resolveConfig(parseArgs(["--config", p]));
    expect(c.id).toBe(1); // found by its address
    expect(c.neighbors).toEqual([
      { id: 2, endpoint: { address: "127.0.0.2", port: 8100 }, cost: 100 },
      { id: 4, endpoint: { address: "127.0.0.4", port: 8100 }, cost: 200 },
    ]);
  });
});

describe("issue 11: configurations that used to start without a word", () => {
  const conf = join(import.meta.dirname, "fixtures", "spines.conf");

  it("takes a spines.conf given with -c (recognised by its content) and --id", () => {
    const c = resolveConfig(parseArgs(["-c", conf, "--id", "2", "--listen", "127.0.0.2:8100"]));
    expect(c.id).toBe(2);
    expect(c.neighbors.map((n) => [n.id, n.endpoint.address, n.cost])).toEqual([
      [1, "127.0.0.1", 100],
      [3, "127.0.0.3", 100],
    ]);
  });

  it("takes --spines-conf FILE --id N", () => {
    const c = resolveConfig(parseArgs(["--spines-conf", conf, "--id", "3", "--listen", "127.0.0.3:8100"]));
    expect(c.id).toBe(3);
    expect(c.neighbors.map((n) => n.id)).toEqual([2, 4]);
  });

  it("asks for --id when a spines.conf cannot tell which host this is", () => {
    const e = configError(() => resolveConfig(parseArgs(["-c", conf])));
    expect(e.message).toContain("--id");
  });

  it("gives nodes of one spines.conf on one machine distinct default sockets", () => {
    const paths = [1, 2, 3].map((id) =>
      resolveConfig(
        parseArgs(["--spines-conf", conf, "--id", String(id), "--listen", `127.0.0.${id}:8100`]),
        {
          tmpdir: "/tmp",
        },
      ),
    );
    expect(new Set(paths.map((c) => c.control)).size).toBe(3);
    expect(new Set(paths.map((c) => c.clientSocket)).size).toBe(3);
    // The wildcard listener keeps the name clients look for by default.
    expect(resolveConfig(parseArgs([]), { tmpdir: "/tmp" }).clientSocket).toBe("/tmp/spines-node-8100.sock");
  });

  it("rejects two neighbours at one address", () => {
    const e = configError(() =>
      resolveConfig(parseArgs(["--id", "1", "-n", "2@127.0.0.1:9002", "-n", "3@127.0.0.1:9002"])),
    );
    expect(e.key).toBe("neighbors.3");
  });

  it("rejects a neighbour at the node's own address", () => {
    const own = ["--id", "1", "--listen", "127.0.0.1:9001", "-n", "2@127.0.0.1:9001"];
    expect(configError(() => resolveConfig(parseArgs(own))).key).toBe("neighbors.2");
    const wildcard = ["--id", "1", "--listen", "0.0.0.0:9001", "-n", "2@127.0.0.1:9001"];
    expect(configError(() => resolveConfig(parseArgs(wildcard))).key).toBe("neighbors.2");
  });

  it("rejects neighbour port 0", () => {
    expect(configError(() => resolveConfig(parseArgs(["--id", "1", "-n", "2@127.0.0.1:0"]))).key).toBe(
      "neighbors.2",
    );
  });

  it("rejects unknown keys under link:", () => {
    const e = configError(() =>
      parseConfigText("link:\n  helloIntervalMs: 50\n  helloIntervallMs: 50\n", "x.yaml"),
    );
    expect(e.key).toBe("link.helloIntervallMs");
    expect(e.source).toBe("x.yaml:3");
  });

  it("says the directory of a socket is missing", () => {
    const e = configError(() => resolveConfig(parseArgs(["--control", join(dir, "no-such-dir", "c.ctl")])));
    expect(e.key).toBe("control");
    expect(e.message).toContain("does not exist");
  });

  it("the help shows spinesctl, not nc", () => {
    expect(HELP).toContain("spinesctl");
    expect(HELP).not.toContain("nc -U");
  });
});
