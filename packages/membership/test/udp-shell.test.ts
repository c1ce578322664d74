import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { UdpMember } from "../src/udp.ts";
import { freePorts } from "./procs.ts";

const src = join(dirname(fileURLToPath(import.meta.url)), "..", "src");

/** Every module the package root loads, following relative imports (type-only ones included). */
function importsFrom(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(/from\s+"([^"]+)"/g)) {
    const spec = m[1] as string;
    if (spec.startsWith(".")) importsFrom(resolve(dirname(file), spec), seen);
    else seen.add(spec);
  }
  return seen;
}

describe("the UDP shell", () => {
  const members: UdpMember[] = [];
  afterAll(async () => {
    await Promise.all(members.map((m) => m.close()));
  });

  it("is not loaded by the package root (the core never pulls in node:dgram)", () => {
    const mods = [...importsFrom(join(src, "index.ts"))];
    expect(mods.some((m) => m.endsWith("udp.ts"))).toBe(false);
    expect(mods.filter((m) => m.startsWith("node:") || m === "@spines-ts/node-host")).toEqual([]);
    // and the shell itself does load it, through node-host (so this check can fail)
    expect([...importsFrom(join(src, "udp.ts"))]).toContain("@spines-ts/node-host");
  });

  it("a throwing listener is counted; the other listeners and later events still run", async () => {
    const [p1, p2] = await freePorts(2);
    const peers = [
      { id: 1, host: "127.0.0.1", port: p1 as number },
      { id: 2, host: "127.0.0.1", port: p2 as number },
    ];
    const start = (id: number) =>
      UdpMember.start({
        id,
        group: "shell",
        bind: { port: peers[id - 1]?.port as number },
        peers: peers.filter((p) => p.id !== id),
      });
    const [a, b] = await Promise.all([start(1), start(2)]);
    members.push(a, b);
    const got: string[] = [];
    for (const m of [a, b]) {
      m.on("view", () => {
        throw new Error("listener bug");
      });
      m.on("message", (d) => got.push(`${m.core.id}:${new TextDecoder().decode(d.payload)}`));
    }
    await new Promise<void>((done) => {
      b.on("view", (v) => {
        if (v.members.length === 2) done();
      });
      if (b.view?.members.length === 2) done();
    });
    await new Promise<void>((done) => {
      const check = () => {
        if (a.view?.members.length === 2) done();
        else setTimeout(check, 10);
      };
      check();
    });
    a.multicast(new TextEncoder().encode("after"));
    await new Promise<void>((done) => {
      const check = () => {
        if (got.length === 2) done();
        else setTimeout(check, 10);
      };
      check();
    });
    expect(got.sort()).toEqual(["1:after", "2:after"]);
    expect(a.listenerErrors + b.listenerErrors).toBeGreaterThan(0);
    expect(a.host.stats.rxHandlerErrors + a.host.stats.timerErrors).toBe(0);
  });
});
