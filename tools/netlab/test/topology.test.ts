import { describe, expect, it } from "vitest";
import { NetlabError } from "../src/errors.ts";
import { plan } from "../src/topology.ts";

describe("topology planning", () => {
  it("numbers LAN members in order and routes a line through its middle hosts", () => {
    const p = plan({
      prefix: "t",
      hosts: ["a", "b", "c", "d"],
      lans: [{ name: "lan0", hosts: ["c", "d"], subnet: "10.1.0.0/24", subnet6: "fd01::/64" }],
      links: [
        { a: "a", b: "b", subnet: "10.2.0.0/30" },
        { a: "b", b: "c", subnet: "10.3.0.0/30" },
      ],
    });
    const lan = p.nets.find((n) => n.name === "lan0");
    expect(lan?.members.get("c")).toMatchObject({ addr: "10.1.0.1", addr6: "fd01::1", iface: "eth-lan0" });
    expect(lan?.members.get("d")).toMatchObject({ addr: "10.1.0.2", addr6: "fd01::2" });
    expect(p.nets.find((n) => n.name === "a-b")?.members.get("b")).toMatchObject({
      addr: "10.2.0.2",
      iface: "to-a",
    });
    expect([...p.forwarding].sort()).toEqual(["b", "c"]);
    // a reaches the LAN via b, and b reaches it via c
    expect(p.routes.get("a")).toContainEqual({
      dest: "10.1.0.0/24",
      via: "10.2.0.2",
      dev: "to-b",
      v6: false,
    });
    expect(p.routes.get("b")).toContainEqual({
      dest: "10.1.0.0/24",
      via: "10.3.0.2",
      dev: "to-c",
      v6: false,
    });
    expect(p.routes.get("d")).toContainEqual({
      dest: "10.2.0.0/30",
      via: "10.1.0.1",
      dev: "eth-lan0",
      v6: false,
    });
    expect(p.routes.get("a")?.some((r) => r.dest === "10.2.0.0/30")).toBe(false);
  });

  it("rejects bad topologies with a typed error", () => {
    const bad = [
      { prefix: "Bad-Prefix", hosts: ["a"] },
      { hosts: [] },
      { hosts: ["a", "a"] },
      { hosts: ["a"], lans: [{ name: "l", hosts: ["z"], subnet: "10.0.0.0/24" }] },
      { hosts: ["a", "b"], links: [{ a: "a", b: "b", lossPct: 200 }] },
      { hosts: ["a", "b"], links: [{ a: "a", b: "b", subnet: "10.0.0.0/33" }] },
      {
        hosts: ["a", "b"],
        links: [
          { a: "a", b: "b" },
          { a: "a", b: "b" },
        ],
      },
    ];
    for (const spec of bad) {
      expect(() => plan(spec as never), JSON.stringify(spec)).toThrow(NetlabError);
    }
  });
});
