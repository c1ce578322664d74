import { afterAll, describe, expect, it } from "vitest";
import { freePorts, Proc, startGroup, startMember } from "./procs.ts";

/**
 * Real processes on loopback UDP. Every step waits for the events it expects (generous timeouts
 * for a loaded 2-core machine); nothing asserts on elapsed wall time.
 */
describe("membership over loopback UDP (real processes)", () => {
  const all: Proc[] = [];
  afterAll(() => {
    for (const p of all) if (!p.exited) p.kill();
  });

  it("join, ordered delivery, SIGKILL, restart, SIGSTOP/SIGCONT, leave", async () => {
    const ids = [1, 2, 3];
    const { procs, ports } = await startGroup(ids, [], 30_000);
    all.push(...procs);
    const [p1, p2, p3] = procs as [Proc, Proc, Proc];
    // join: one view of all three everywhere, with the same id
    const v = await Promise.all(procs.map((p) => p.waitView(ids, 30_000)));
    expect(new Set(v.map((l) => l.key)).size).toBe(1);

    // total order with self-delivery: everyone sends, everyone gets the same sequence
    for (const p of procs) for (let i = 0; i < 5; i++) p.send(`send m${p.id}-${i}`);
    const seqs = await Promise.all(
      procs.map(async (p) => {
        await p.waitFor((l) => l.ev === "message" && l.text === "m3-4");
        await p.waitFor((l) => l.ev === "message" && l.text === "m1-4");
        await p.waitFor((l) => l.ev === "message" && l.text === "m2-4");
        return p.lines.filter((l) => l.ev === "message").map((l) => l.text);
      }),
    );
    expect(seqs[0]).toHaveLength(15);
    expect(seqs[1]).toEqual(seqs[0]);
    expect(seqs[2]).toEqual(seqs[0]);
    for (const id of ids) {
      const mine = (seqs[0] as string[]).filter((t) => t.startsWith(`m${id}-`));
      expect(mine).toEqual([0, 1, 2, 3, 4].map((i) => `m${id}-${i}`)); // sender FIFO
    }

    // crash: SIGKILL member 3; 1 and 2 install {1,2}
    let mark1 = p1.lines.length;
    let mark2 = p2.lines.length;
    p3.kill("SIGKILL");
    await Promise.all([p1.waitView([1, 2], 20_000, mark1), p2.waitView([1, 2], 20_000, mark2)]);

    // restart: a new process for member 3 joins
    mark1 = p1.lines.length;
    mark2 = p2.lines.length;
    const p3b = startMember(3, ids, ports, 2);
    all.push(p3b);
    await Promise.all([
      p1.waitView(ids, 30_000, mark1),
      p2.waitView(ids, 30_000, mark2),
      p3b.waitView(ids, 30_000),
    ]);

    // pause: SIGSTOP member 2 until the others exclude it, then SIGCONT: it rejoins cleanly
    mark1 = p1.lines.length;
    const mark3 = p3b.lines.length;
    p2.kill("SIGSTOP");
    await Promise.all([p1.waitView([1, 3], 20_000, mark1), p3b.waitView([1, 3], 20_000, mark3)]);
    const mark2b = p2.lines.length;
    p2.kill("SIGCONT");
    const back = await Promise.all([
      p1.waitView(ids, 20_000, mark1),
      p2.waitView(ids, 20_000, mark2b),
      p3b.waitView(ids, 20_000, mark3),
    ]);
    expect(new Set(back.map((l) => l.key)).size).toBe(1);
    // and traffic flows in the new view, to everyone including the sender
    p2.send("send after-pause");
    await Promise.all(
      [p1, p2, p3b].map((p) =>
        p.waitFor((l) => l.ev === "message" && l.text === "after-pause", 20_000, p.lines.length - 5),
      ),
    );

    // graceful leave: member 1 (the coordinator) leaves; 2 and 3 install {2,3}
    const m2 = p2.lines.length;
    const m3 = p3b.lines.length;
    p1.send("leave");
    await p1.waitFor((l) => l.ev === "left");
    await Promise.all([p2.waitView([2, 3], 20_000, m2), p3b.waitView([2, 3], 20_000, m3)]);
  });

  it("discovery by UDP multicast on the loopback interface (TTL 0)", async () => {
    const ids = [11, 12, 13];
    const ports = await freePorts(4);
    const dport = ports[3] as number;
    // no peer list: members find each other through the multicast group
    const procs = ids.map(
      (id, i) =>
        new Proc(id, [
          "--id",
          String(id),
          "--port",
          String(ports[i]),
          "--discovery",
          `multicast:239.255.42.99:${dport}:127.0.0.1`,
        ]),
    );
    all.push(...procs);
    await Promise.all(procs.map((p) => p.waitView(ids, 30_000)));
  });
});
