/**
 * The overlay's node set in the configuration (config `nodes`, spines.conf Hosts): what routing
 * accepts items about (docs/security.md). A neighbours-only configuration lists no node set.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { parseArgs, parseConfigText, resolveConfig } from "../src/config.ts";

const dir = mkdtempSync(join(tmpdir(), "spines-node-nodes-"));
const env = { tmpdir: dir };
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("no ConfigError");
}

describe("config nodes", () => {
  it("a neighbours-only configuration has no node set (every id accepted, as before)", () => {
    const c = resolveConfig(
      parseArgs(["--id", "1", "--listen", "127.0.0.1:9300", "-n", "2@127.0.0.1:9301"]),
      env,
    );
    expect(c.nodes).toBeUndefined();
  });

  it("`nodes` lists the overlay; the node itself and its neighbours always belong", () => {
    const p = file(
      "n.yaml",
      "id: 5\nlisten: 127.0.0.1:9310\nneighbors:\n  - 6@127.0.0.1:9311\nnodes: [9, 1, 10.0.0.7]\n",
    );
    const c = resolveConfig(parseArgs(["-c", p, "-n", "8@127.0.0.1:9312"]), env);
    expect(c.nodes).toEqual([1, 5, 6, 8, 9, 0x0a000007]);
  });

  it("a spines.conf's Hosts are the node set, with the config file's `nodes` added", () => {
    const conf = file(
      "spines.conf",
      "Hosts {\n 1 127.0.0.1\n 2 127.0.0.2\n 3 127.0.0.3\n 4 127.0.0.4\n}\nEdges {\n 1 2 1\n 2 3 1\n}\n",
    );
    const c = resolveConfig(
      parseArgs(["--spines-conf", conf, "--id", "2", "--listen", "127.0.0.2:8100"]),
      env,
    );
    expect(c.nodes).toEqual([1, 2, 3, 4]);
    const y = file(
      "with-conf.yaml",
      `spinesConf: ${JSON.stringify(conf)}\nid: 1\nlisten: 127.0.0.1:8100\nnodes: [77]\n`,
    );
    expect(resolveConfig(parseArgs(["-c", y]), env).nodes).toEqual([1, 2, 3, 4, 77]);
  });

  it("bad entries are ConfigErrors naming the entry", () => {
    expect(configError(() => parseConfigText("nodes: [1, 0]\n", "x.yaml")).key).toBe("nodes[1]");
    expect(configError(() => parseConfigText("nodes: [1, 4294967295]\n", "x.yaml")).key).toBe("nodes[1]");
    expect(configError(() => parseConfigText("nodes: [1, foo]\n", "x.yaml")).key).toBe("nodes[1]");
    expect(configError(() => parseConfigText("nodes: 3\n", "x.yaml")).key).toBe("nodes");
    expect(configError(() => parseConfigText("nodes: 3\n", "x.yaml")).source).toBe("x.yaml:1");
  });
});
