import { CapacityError, ConfigError } from "@spines-ts/primitives";
import { decode, encode, type MbOrdered } from "@spines-ts/wire";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MembershipCore, type MembershipEvent, NotJoinedError, profiles } from "../src/index.ts";

/** A tiny lossless in-memory network of cores driven by hand (no simulator). */
function net(ids: number[], profile: "default" | "fast" = "default", limits = {}) {
  const cores = new Map(
    ids.map((id) => [
      id,
      new MembershipCore({ id, incarnation: id * 1000 + 1, group: "g", peers: ids, profile, limits }),
    ]),
  );
  const events = new Map<number, MembershipEvent[]>(ids.map((id) => [id, []]));
  let now = 0;
  const pump = () => {
    for (let guard = 0; guard < 10_000; guard++) {
      let moved = false;
      for (const [id, c] of cores) {
        for (const ev of c.takeEvents()) events.get(id)?.push(ev);
        for (const t of c.takeTransmits()) {
          if (t.to === null) continue;
          const dst = cores.get(t.to);
          if (dst) {
            dst.receive(id, t.data, now);
            moved = true;
          }
        }
      }
      if (!moved) return;
    }
  };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      let next = end;
      for (const c of cores.values()) next = Math.min(next, c.nextDeadline() ?? end);
      now = Math.max(now, next);
      for (const c of cores.values())
        if ((c.nextDeadline() ?? Number.POSITIVE_INFINITY) <= now) c.handleTimeout(now);
      pump();
      if (now >= end) return;
    }
  };
  for (const c of cores.values()) c.join(now);
  pump();
  return {
    cores,
    events,
    advance,
    get now() {
      return now;
    },
    core: (id: number) => cores.get(id) as MembershipCore,
  };
}

describe("MembershipCore", () => {
  it("validates its configuration with ConfigError naming the key", () => {
    expect(() => new MembershipCore({ id: -1, incarnation: 1, group: "g" })).toThrow(ConfigError);
    expect(() => new MembershipCore({ id: 1, incarnation: 0, group: "g" })).toThrow(/incarnation/);
    expect(() => new MembershipCore({ id: 1, incarnation: 1, group: "" })).toThrow(/group/);
    expect(
      () => new MembershipCore({ id: 1, incarnation: 1, group: "g", timing: { failureTimeoutMs: 50 } }),
    ).toThrow(/failureTimeoutMs/);
    expect(
      () => new MembershipCore({ id: 1, incarnation: 1, group: "g", limits: { maxPending: 0 } }),
    ).toThrow(/maxPending/);
    expect(
      () => new MembershipCore({ id: 1, incarnation: 1, group: "g", profile: "nope" as "fast" }),
    ).toThrow(/profile/);
  });

  it("validates calls: TypeError/RangeError for bad arguments, NotJoinedError before join", () => {
    const c = new MembershipCore({ id: 1, incarnation: 1, group: "g", limits: { maxPayloadBytes: 10 } });
    expect(() => c.multicast(new Uint8Array(1), 0)).toThrow(NotJoinedError);
    c.join(0);
    expect(() => c.multicast("x" as unknown as Uint8Array, 0)).toThrow(TypeError);
    expect(() => c.multicast(new Uint8Array(11), 0)).toThrow(RangeError);
    expect(() => c.receive(2, new Uint8Array(3), Number.NaN)).toThrow(TypeError);
    expect(() => c.join(0)).toThrow(NotJoinedError);
    c.leave(1);
    expect(() => c.leave(2)).toThrow(NotJoinedError);
    expect(c.takeEvents().some((e) => e.type === "left")).toBe(true);
  });

  it("a lone member forms its own view after the join grace, and delivers to itself", () => {
    const c = new MembershipCore({ id: 5, incarnation: 9, group: "g" });
    c.join(0);
    c.handleTimeout(300);
    expect(c.view?.members).toEqual([5]);
    expect(c.multicast(new Uint8Array([1, 2]), 300)).toBe(true);
    const evs = c.takeEvents();
    const msgs = evs.filter((e) => e.type === "message");
    expect(msgs).toHaveLength(1);
    expect(c.pendingCount).toBe(0);
  });

  it("bounds pending multicasts: would-block (false) at maxPending, then a drain event", () => {
    const n = net([1, 2, 3], "default", { maxPending: 4 });
    n.advance(400);
    expect(n.core(2).view?.members).toEqual([1, 2, 3]);
    const c2 = n.core(2);
    // nothing is pumped between these calls: the sequencer has not answered yet
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) results.push(c2.multicast(new Uint8Array([i]), n.now));
    expect(results).toEqual([true, true, true, true, false, false]);
    expect(c2.pendingCount).toBe(4);
    n.advance(50);
    expect(c2.pendingCount).toBe(0);
    expect(n.events.get(2)?.some((e) => e.type === "drain")).toBe(true);
    const blocked = new MembershipCore({ id: 9, incarnation: 1, group: "g", limits: { maxPending: 2 } });
    blocked.join(0); // no view yet: nothing can be sent
    expect(blocked.multicast(new Uint8Array([1]), 0)).toBe(true);
    expect(blocked.multicast(new Uint8Array([2]), 0)).toBe(true);
    expect(blocked.multicast(new Uint8Array([3]), 0)).toBe(false);
    blocked.handleTimeout(300); // forms a singleton view: the two are delivered, room again
    const evs = blocked.takeEvents();
    expect(evs.filter((e) => e.type === "message")).toHaveLength(2);
    expect(evs.some((e) => e.type === "drain")).toBe(true);
  });

  it("three members agree on one view and one order, the sender included", () => {
    const n = net([1, 2, 3]);
    n.advance(400);
    for (const id of [1, 2, 3])
      for (let i = 0; i < 20; i++) n.core(id).multicast(new Uint8Array([id, i]), n.now);
    n.advance(100);
    const order = (id: number) =>
      (n.events.get(id) ?? [])
        .filter((e) => e.type === "message")
        .map((e) => (e.type === "message" ? `${e.message.sender}:${e.message.senderSeq}` : ""));
    expect(order(1)).toHaveLength(60);
    expect(order(2)).toEqual(order(1));
    expect(order(3)).toEqual(order(1));
  });

  it("never throws on peer bytes: random and mutated datagrams are counted and dropped", () => {
    const n = net([1, 2, 3]);
    n.advance(400);
    const c = n.core(1);
    const valid: MbOrdered = {
      _tag: "MbOrdered",
      view: c.view?.id ?? { counter: 0, coord: 0, coordInc: 0 },
      firstSeq: 1,
      stable: 0,
      entries: [
        { sender: 2, senderSeq: 1, payload: new Uint8Array([1]) },
        { sender: 3, senderSeq: 1, payload: new Uint8Array([2, 3]) },
      ],
    };
    const good = encode({ sender: 2, incarnation: 2001 }, valid);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(good.length - 1),
        fc.integer({ min: 0, max: 255 }),
        (junk, at, b) => {
          c.receive(2, junk, n.now);
          const m = good.slice();
          m[at] = b;
          c.receive(2, m, n.now);
        },
      ),
      { numRuns: 3000 },
    );
    expect(c.stats.badPackets).toBeGreaterThan(0);
  });

  it("ignores other groups and unknown senders of non-heartbeat messages", () => {
    const c = new MembershipCore({ id: 1, incarnation: 1, group: "a" });
    c.join(0);
    const hb = encode(
      { sender: 2, incarnation: 2 },
      {
        _tag: "MbHeartbeat",
        group: 12345,
        hbSeq: 0,
        flags: 0,
        view: { counter: 0, coord: 0, coordInc: 0 },
        maxCounter: 0,
        delivered: 0,
        seqHigh: 0,
      },
    );
    c.receive(2, hb, 1);
    expect(c.stats.foreignGroup).toBe(1);
    c.handleTimeout(300);
    expect(c.view?.members).toEqual([1]);
    expect(decode(hb).msg._tag).toBe("MbHeartbeat");
  });

  it("profiles: detection within the target on a LAN, and margin over a 100 ms stall", () => {
    // the arithmetic the design relies on (docs/membership.md, failure detection)
    for (const [name, t] of Object.entries(profiles)) {
      const target = name === "fast" ? 150 : 500;
      expect(t.failureTimeoutMs).toBeLessThan(target);
      // a member busy for 100 ms is silent for at most 100 ms + one heartbeat interval
      expect(100 + t.heartbeatIntervalMs).toBeLessThan(t.failureTimeoutMs);
    }
    expect(new CapacityError("x", 1).code).toBe("ERR_CAPACITY");
  });
});
