import { createSocket } from "node:dgram";
import { encode } from "@spines-ts/wire";
import { parseKeyFile } from "@spines-ts/wire/auth";
import { afterAll, describe, expect, it } from "vitest";
import { groupHash } from "../src/index.ts";
import { UdpMember } from "../src/udp.ts";
import { freePorts } from "./procs.ts";

const K1 = parseKeyFile(`1 ${"11".repeat(32)}\n`);
const WRONG = parseKeyFile(`1 ${"99".repeat(32)}\n`);

async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ok()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return ok();
}

describe("UdpMember with auth (loopback)", () => {
  const members: UdpMember[] = [];
  afterAll(async () => {
    await Promise.all(members.map((m) => m.close()));
  });

  it("members with the key form a view; a wrong-key member and forged datagrams are dropped and counted", async () => {
    const ports = await freePorts(3);
    const peers = ports.map((port, i) => ({ id: i + 1, host: "127.0.0.1", port: port as number }));
    const start = (id: number, keys = K1) =>
      UdpMember.start({
        id,
        group: "auth",
        bind: { port: peers[id - 1]?.port as number },
        peers: peers.filter((p) => p.id !== id),
        auth: { keys },
      });
    const [a, b, c] = await Promise.all([start(1), start(2), start(3, WRONG)]);
    members.push(a, b, c);
    expect(
      await until(() => a.view?.members.join() === "1,2" && b.view?.members.join() === "1,2", 10_000),
    ).toBe(true);
    expect(await until(() => (a.node.authStats()?.badMac ?? 0) > 0, 5000)).toBe(true);
    expect(c.view?.members ?? [3]).toEqual([3]);
    expect(c.node.authStats()?.accepted).toBe(0);
    // a forged MbLeave "from" member 2, unsigned, then with an all-zero MAC, from a stranger's socket
    // and (unsigned) from an unknown endpoint
    const leave = encode(
      { sender: 2, incarnation: b.core.incarnation },
      { _tag: "MbLeave", group: groupHash("auth") },
    );
    const zero = K1.sign(leave, Date.now() * 1000 + 1e9);
    zero.fill(0, zero.length - 16);
    const s = createSocket("udp4");
    try {
      for (let i = 0; i < 5; i++) {
        s.send(leave, a.port, "127.0.0.1");
        s.send(zero, a.port, "127.0.0.1");
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      s.close();
    }
    expect(a.view?.members).toEqual([1, 2]);
    // neither taught member 1 a new endpoint for member 2
    expect(a.host.peer(2)?.port).toBe(b.port);
  });
});
