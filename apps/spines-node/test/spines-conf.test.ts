import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { neighborsFromSpinesConf, parseSpinesConf } from "../src/spines-conf.ts";

const example = readFileSync(join(import.meta.dirname, "fixtures", "spines.conf"), "utf8");

describe("spines.conf import", () => {
  it("reads hosts, edges and settings", () => {
    const c = parseSpinesConf(example);
    expect([...c.hosts]).toEqual([
      [1, "127.0.0.1"],
      [2, "127.0.0.2"],
      [3, "127.0.0.3"],
      [4, "127.0.0.4"],
    ]);
    expect(c.edges).toEqual([
      { a: 1, b: 2, cost: 100 },
      { a: 2, b: 3, cost: 100 },
      { a: 3, b: 4, cost: 50 },
      { a: 1, b: 4, cost: 200 },
    ]);
    expect(c.directed).toBe(false);
    expect(c.settings.get("Signature_Len_Bits")).toBe("1024");
  });

  it("derives each node's neighbours from undirected edges", () => {
    const c = parseSpinesConf(example);
    expect(neighborsFromSpinesConf(c, { id: 3 }).neighbors.map((n) => [n.id, n.cost])).toEqual([
      [2, 100],
      [4, 50],
    ]);
    expect(neighborsFromSpinesConf(c, { address: "127.0.0.4" }).localId).toBe(4);
  });

  it("takes the outgoing cost with directed edges", () => {
    const c = parseSpinesConf(
      "Directed_Edges = yes\nHosts { 1 10.0.0.1 2 10.0.0.2 }\nEdges {\n 1 2 5\n 2 1 9\n}\n",
    );
    expect(c.directed).toBe(true);
    expect(neighborsFromSpinesConf(c, { id: 1 }).neighbors).toEqual([
      { id: 2, address: "10.0.0.2", cost: 5 },
    ]);
    expect(neighborsFromSpinesConf(c, { id: 2 }).neighbors).toEqual([
      { id: 1, address: "10.0.0.1", cost: 9 },
    ]);
  });

  it("accepts the brace on the next line and ids above Spines' 50", () => {
    const c = parseSpinesConf("Hosts\n{\n  1000 10.0.0.1\n  7 10.0.0.7\n}\nEdges\n{\n1000 7 1 }\n");
    expect(c.hosts.get(1000)).toBe("10.0.0.1");
    expect(c.edges).toHaveLength(1);
  });

  it.each([
    ["Hosts {\n 1 10.0.0.1\n 2\n}\n", "conf:3", "Hosts"],
    ["Hosts {\n 1 10.0.0.300\n}\n", "conf:2", "Hosts.1"],
    ["Hosts {\n 1 10.0.0.1\n 1 10.0.0.2\n}\n", "conf:3", "Hosts.1"],
    ["Hosts { 1 10.0.0.1 2 10.0.0.2 }\nEdges {\n 1 2\n}\n", "conf:3", "Edges"],
    ["Hosts { 1 10.0.0.1 2 10.0.0.2 }\nEdges {\n 1 2 0\n}\n", "conf:3", "Edges.1-2"],
    ["Hosts { 1 10.0.0.1 }\nEdges {\n 1 3 1\n}\n", "conf", "Edges.1-3"],
    ["Hosts {\n 1 10.0.0.1\n", "conf:3", "Hosts"],
    ["what is this\n", "conf:1", "(syntax)"],
    ["Directed_Edges = maybe\n", "conf", "Directed_Edges"],
  ])("rejects %j with a ConfigError at %s", (text, source, key) => {
    let err: unknown;
    try {
      parseSpinesConf(text, "conf");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).source).toBe(source);
    expect((err as ConfigError).key).toBe(key);
  });

  it("requires the local node to be listed", () => {
    const c = parseSpinesConf(example);
    expect(() => neighborsFromSpinesConf(c, { id: 9 })).toThrow(ConfigError);
    expect(() => neighborsFromSpinesConf(c, { address: "10.9.9.9" })).toThrow(ConfigError);
  });
});

describe("spines.conf security settings spines-node does not have", () => {
  const hosts = "Hosts {\n 1 127.0.0.1\n 2 127.0.0.2\n}\nEdges {\n 1 2 10\n}\n";
  for (const line of ["IT_LinkCrypto = True", "IT_IntrusionToleranceMode = Yes", "Crypto = 1"]) {
    it(`rejects ${line} naming the key and line`, () => {
      let err: unknown;
      try {
        parseSpinesConf(`${hosts}${line}\n`, "s.conf");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.key).toBe(line.split(" ")[0]);
      expect(e.source).toBe("s.conf:8");
      expect(e.message).toContain("not support");
    });
  }

  it("accepts them turned off", () => {
    const c = parseSpinesConf(`${hosts}IT_LinkCrypto = False\nIT_IntrusionToleranceMode = no\n`);
    expect(c.settings.get("IT_LinkCrypto")).toBe("False");
  });
});
