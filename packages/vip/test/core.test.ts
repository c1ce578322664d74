/**
 * VipCore as a sans-IO state machine, fed by hand: views and deliveries in, payloads, actions and
 * events out. Several cores share one hand-made total order, as the membership service would give.
 */
import type { Delivery, View } from "@spines-ts/membership";
import { ConfigError } from "@spines-ts/primitives";
import { decode, encode } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { type VipConfig, VipCore } from "../src/index.ts";
import { makeGroups } from "./support/scenario.ts";

const groups = makeGroups(4);

function view(counter: number, members: number[], me: number, transitional = members): View {
  const id = { counter, coord: members[0] as number, coordInc: 1 };
  return {
    id,
    key: `${counter}.${members[0]}.1`,
    members,
    incarnations: members.map(() => 1),
    myIndex: members.indexOf(me),
    transitional,
    previous: { counter: 0, coord: 0, coordInc: 0 },
  };
}

/** A cluster of cores driven through one total order per view (every payload delivered to all, in order). */
function cluster(ids: number[], config: Partial<VipConfig> = {}) {
  const cores = new Map(
    ids.map((id) => [
      id,
      new VipCore({ groups, matureMs: 0, holdOffMs: 0, balance: { mode: "off" }, ...config }, id),
    ]),
  );
  for (const c of cores.values()) c.start(0);
  let seq = 0;
  const install = (v: (me: number) => View, now = 0): void => {
    for (const [id, c] of cores) c.handleView(v(id), now);
    pump(v(ids[0] as number), now);
  };
  const pump = (v: View, now = 0): void => {
    for (let round = 0; round < 10; round++) {
      const batch: { sender: number; payload: Uint8Array }[] = [];
      for (const id of v.members)
        for (const p of cores.get(id)?.takeTransmits() ?? []) batch.push({ sender: id, payload: p });
      if (batch.length === 0) return;
      for (const m of batch) {
        const d: Delivery = { view: v.id, seq: ++seq, sender: m.sender, senderSeq: seq, payload: m.payload };
        for (const id of v.members) cores.get(id)?.handleDelivery(d, now);
      }
    }
  };
  return { cores, install, pump };
}

describe("VipCore", () => {
  it("one exchange gives every member the same table and each group exactly one holder", () => {
    const { cores, install } = cluster([1, 2, 3]);
    install((me) => view(1, [1, 2, 3], me));
    const owners = [...cores.values()].map((c) => c.snapshot().owners);
    expect(new Set(owners.map((o) => JSON.stringify(o))).size).toBe(1);
    const held = [...cores.values()].flatMap((c) => [...c.held]).sort();
    expect(held).toEqual([0, 1, 2, 3]);
  });

  it("maturity: an immature view holds nothing; a VipMature matures every member at one point (contagion)", () => {
    const { cores, install, pump } = cluster([1, 2], { matureMs: 1000 });
    install((me) => view(1, [1, 2], me));
    expect([...cores.values()].every((c) => c.held.size === 0 && c.phase === "run")).toBe(true);
    const c1 = cores.get(1) as VipCore;
    expect(c1.nextDeadline()).toBe(1000);
    c1.handleTimeout(1000); // only member 1's timer fires
    pump(view(1, [1, 2], 1), 1000);
    expect([...cores.values()].every((c) => c.snapshot().mature)).toBe(true);
    expect([...cores.values()].flatMap((c) => [...c.held]).sort()).toEqual([0, 1, 2, 3]);
  });

  it("a joiner from a mature cluster matures at its first exchange (contagion through the state message)", () => {
    const { cores, install } = cluster([1, 2], { matureMs: 0 });
    const late = new VipCore({ groups, matureMs: 60_000, holdOffMs: 0, balance: { mode: "off" } }, 3);
    late.start(0);
    cores.set(3, late);
    install((me) => view(2, [1, 2, 3], me));
    expect(late.snapshot().mature).toBe(true);
  });

  it("releases every VIP, once per group, on shutdown, on failure and on loss of the membership service", () => {
    for (const how of ["stop", "fail", "membershipLost"] as const) {
      const { cores, install } = cluster([1]);
      install((me) => view(1, [1], me));
      const c = cores.get(1) as VipCore;
      expect(c.takeActions().map((a) => a.type)).toEqual(["acquire", "acquire", "acquire", "acquire"]);
      c[how](5);
      const actions = c.takeActions();
      expect(actions.map((a) => `${a.type} ${a.group.name}`)).toEqual([
        "release g0",
        "release g1",
        "release g2",
        "release g3",
      ]);
      expect(c.held.size).toBe(0);
      expect(c.takeEvents().some((e) => e.type === "releasedAll" && e.reason === how)).toBe(true);
    }
  });

  it("drops stale messages (another view) and counts bad payloads as events without throwing", () => {
    const { cores, install } = cluster([1, 2]);
    install((me) => view(1, [1, 2], me));
    const c = cores.get(1) as VipCore;
    c.takeEvents();
    const v = view(1, [1, 2], 1);
    const before = JSON.stringify(c.snapshot().owners);
    const stale = encode(
      { sender: 2, incarnation: 1 },
      { _tag: "VipBalance", view: { counter: 0, coord: 1, coordInc: 1 }, maxMoves: 4 },
    );
    c.handleDelivery({ view: v.id, seq: 100, sender: 2, senderSeq: 100, payload: stale }, 1);
    c.handleDelivery(
      { view: v.id, seq: 101, sender: 2, senderSeq: 101, payload: new Uint8Array([1, 2, 3]) },
      1,
    );
    const spoofed = encode({ sender: 9, incarnation: 1 }, { _tag: "VipSettled", view: v.id });
    c.handleDelivery({ view: v.id, seq: 102, sender: 2, senderSeq: 102, payload: spoofed }, 1);
    expect(JSON.stringify(c.snapshot().owners)).toBe(before);
    expect(c.takeEvents().filter((e) => e.type === "badMessage")).toHaveLength(2);
  });

  it("a member with a different group table is reported and its claims ignored", () => {
    const { cores } = cluster([1]);
    const other = new VipCore({ groups: makeGroups(5), matureMs: 0, holdOffMs: 0 }, 2);
    other.start(0);
    cores.set(2, other);
    const c = cores.get(1) as VipCore;
    c.handleView(view(1, [1, 2], 1), 0);
    other.handleView(view(1, [1, 2], 2), 0);
    const p = other.takeTransmits()[0] as Uint8Array;
    c.handleDelivery({ view: view(1, [1, 2], 1).id, seq: 1, sender: 2, senderSeq: 1, payload: p }, 0);
    expect(c.takeEvents().some((e) => e.type === "tableMismatch" && e.member === 2)).toBe(true);
  });

  it("losing the majority of the previous view starts the flap hold-off; VipSettled ends it at every member", () => {
    const { cores, install, pump } = cluster([1, 2, 3], { holdOffMs: 500 });
    for (const c of cores.values()) c.handleTimeout(500); // all settled at start
    pump(view(0, [1, 2, 3], 1), 500);
    install((me) => view(1, [1, 2, 3], me), 500);
    expect(cores.get(3)?.snapshot().settled).toBe(true);
    // 3 is cut off: it installs a view alone (transitional {3} of 3)
    const c3 = cores.get(3) as VipCore;
    c3.handleView(view(2, [3], 3, [3]), 600);
    expect(c3.snapshot().settled).toBe(false);
    expect(c3.nextDeadline()).toBe(1100);
    // 1 and 2 kept the majority: still settled
    for (const id of [1, 2]) cores.get(id)?.handleView(view(2, [1, 2], id, [1, 2]), 600);
    expect(cores.get(1)?.snapshot().settled).toBe(true);
  });

  it("samples neighbours a while after an exchange, not during it", () => {
    const { cores, install } = cluster([1, 2], { neighborShareMs: 5000, neighborSampleDelayMs: 300 });
    install((me) => view(1, [1, 2], me));
    const c1 = cores.get(1) as VipCore;
    // the exchange raised the groups: no sample (a process start) competes with them
    expect(c1.takeEvents().some((e) => e.type === "sampleNeighbors")).toBe(false);
    expect(c1.nextDeadline()).toBeLessThanOrEqual(300);
    c1.handleTimeout(300);
    expect(c1.takeEvents().some((e) => e.type === "sampleNeighbors")).toBe(true);
    c1.handleTimeout(5299);
    expect(c1.takeEvents().some((e) => e.type === "sampleNeighbors")).toBe(false);
    c1.handleTimeout(5300);
    expect(c1.takeEvents().some((e) => e.type === "sampleNeighbors")).toBe(true);
  });

  it("shares neighbour samples periodically, and the learned table is bounded (Wackamole quirk 4)", () => {
    const { cores, install, pump } = cluster([1, 2], { neighborShareMs: 1000, neighborSampleDelayMs: 0 });
    install((me) => view(1, [1, 2], me));
    const c1 = cores.get(1) as VipCore;
    expect(c1.takeEvents().some((e) => e.type === "sampleNeighbors")).toBe(true);
    c1.handleTimeout(1000);
    expect(c1.takeEvents().some((e) => e.type === "sampleNeighbors")).toBe(true);
    expect(c1.nextDeadline()).toBe(2000);
    const many = Array.from({ length: 1500 }, (_, i) => ({
      ip: new Uint8Array([10, 0, i >> 8, i & 255]),
      mac: new Uint8Array([2, 0, 0, 0, i >> 8, i & 255]),
    }));
    c1.shareNeighbors(many, 1000);
    pump(view(1, [1, 2], 1), 1000);
    expect((cores.get(2) as VipCore).neighbors().length).toBeLessThanOrEqual(1024);
    expect((cores.get(2) as VipCore).neighbors().length).toBeGreaterThan(0);
  });

  it("never keeps a configured VIP as a neighbour to notify (IPv4 and IPv6)", () => {
    const { cores, install, pump } = cluster([1, 2], { neighborShareMs: 1000 });
    install((me) => view(1, [1, 2], me));
    const c1 = cores.get(1) as VipCore;
    const mac = new Uint8Array([2, 0, 0, 0, 0, 1]);
    const fd03 = new Uint8Array(16);
    fd03.set([0xfd, 0], 0);
    fd03[15] = 3;
    c1.shareNeighbors(
      [
        { ip: new Uint8Array([10, 0, 1, 1]), mac }, // g1's VIP
        { ip: fd03, mac }, // g2's IPv6 VIP fd00::3
        { ip: new Uint8Array([10, 0, 9, 9]), mac }, // a real neighbour
      ],
      1000,
    );
    pump(view(1, [1, 2], 1), 1000);
    const learned = (cores.get(2) as VipCore).neighbors().map((n) => Array.from(n.ip).join("."));
    expect(learned).toEqual(["10.0.9.9"]);
  });

  it("documented defaults are the effective ones (Wackamole quirk 1)", () => {
    const c = new VipCore({ groups }, 1);
    expect(c.matureMs).toBe(5000);
    expect(c.holdOffMs).toBe(10_000);
    expect(c.balance).toEqual({ mode: "periodic", intervalMs: 4000, movesPerRound: 1 });
  });

  it("bad configuration is a typed ConfigError naming the key", () => {
    const bad: [Partial<VipConfig>, RegExp][] = [
      [{ groups: [] }, /groups/],
      [{ groups: [{ name: "a", addresses: ["eth0 300.1.1.1/32"] }] }, /addresses\[0\]\.address/],
      [{ groups: [{ name: "a", addresses: ["eth0 fd00::zz/128"] }] }, /IPv6/],
      [
        {
          groups: [
            { name: "a", addresses: ["eth0 10.0.0.1/32"] },
            { name: "b", addresses: ["eth1 10.0.0.1/32"] },
          ],
        },
        /not already in a/,
      ],
      [{ groups: [{ name: "a", addresses: ["eth0 10.0.0.1/32"] }], prefer: ["zz"] }, /prefer\[0\]/],
      [{ groups, matureMs: -1 }, /matureMs/],
      [{ groups, balance: { mode: "periodic", intervalMs: 0, movesPerRound: 1 } }, /intervalMs/],
    ];
    for (const [cfg, re] of bad) {
      let err: unknown;
      try {
        new VipCore(cfg as VipConfig, 1);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect(String((err as Error).message)).toMatch(re);
    }
  });

  describe("a view that only removes members (docs/vip.md §4.4)", () => {
    const tags = (c: VipCore): string[] => c.takeTransmits().map((p) => decode(p).msg._tag);
    /** Four members with preferences, one exchange, then member 3 is gone: the survivors' view. */
    const scenario = (config: Partial<VipConfig>) => {
      const ids = [1, 2, 3, 4];
      const cores = new Map(
        ids.map((id) => [
          id,
          new VipCore(
            {
              groups: makeGroups(8),
              matureMs: 0,
              holdOffMs: 0,
              balance: { mode: "off" },
              prefer: id === 2 ? ["g5"] : [],
              ...config,
            },
            id,
          ),
        ]),
      );
      for (const c of cores.values()) c.start(0);
      let seq = 0;
      const pump = (v: View, now: number): void => {
        for (let round = 0; round < 10; round++) {
          const batch: { sender: number; payload: Uint8Array }[] = [];
          for (const id of v.members)
            for (const p of cores.get(id)?.takeTransmits() ?? []) batch.push({ sender: id, payload: p });
          for (const m of batch) {
            const d: Delivery = {
              view: v.id,
              seq: ++seq,
              sender: m.sender,
              senderSeq: seq,
              payload: m.payload,
            };
            for (const id of v.members) cores.get(id)?.handleDelivery(d, now);
          }
        }
      };
      for (const [id, c] of cores) c.handleView(view(1, ids, id), 0);
      pump(view(1, ids, 1), 0);
      const lost = [...(cores.get(3) as VipCore).held];
      const survivors = [1, 2, 4];
      return { cores, survivors, lost, pump, v2: (me: number) => view(2, survivors, me, survivors) };
    };

    it("the survivors agree on the new table at installation, without messages, and it is the one an exchange computes", () => {
      const carried = scenario({});
      const exchanged = scenario({ exchangeEveryView: true });
      expect(carried.lost.length).toBeGreaterThan(0);
      for (const id of carried.survivors) {
        const c = carried.cores.get(id) as VipCore;
        c.handleView(carried.v2(id), 10);
        expect(c.phase, `member ${id}`).toBe("run");
        expect(tags(c), `member ${id} sends nothing`).toEqual([]);
        const ev = c
          .takeEvents()
          .filter((e) => e.type === "allocated")
          .at(-1);
        expect(ev).toMatchObject({ reason: "exchange", carried: true });
      }
      for (const id of exchanged.survivors) {
        const c = exchanged.cores.get(id) as VipCore;
        c.handleView(exchanged.v2(id), 10);
        expect(c.phase).toBe("gather");
      }
      exchanged.pump(exchanged.v2(1), 10);
      const owners = (m: typeof carried) => m.survivors.map((id) => m.cores.get(id)?.snapshot().owners);
      expect(new Set(owners(carried).map((o) => JSON.stringify(o))).size).toBe(1);
      expect(owners(carried)).toEqual(owners(exchanged));
      // every group of the lost member has a new holder, exactly one
      const held = carried.survivors
        .flatMap((id) => [...(carried.cores.get(id) as VipCore).held])
        .sort((a, b) => a - b);
      expect(held).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    });

    it("a view with a member from elsewhere (a merge or a join) still runs the exchange", () => {
      const m = scenario({});
      const c = m.cores.get(1) as VipCore;
      // member 5 joins as member 3 leaves: only 1, 2 and 4 come from the old view
      c.handleView(view(2, [1, 2, 4, 5], 1, [1, 2, 4]), 10);
      expect(c.phase).toBe("gather");
      expect(tags(c)).toEqual(["VipState"]);
    });

    it("a flag set in the old view whose message was not delivered there is sent again in the new one", () => {
      const m = scenario({ holdOffMs: 1000 });
      // every member's hold-off ends, and member 3 goes before their VipSettled are delivered
      for (const id of [1, 2, 3, 4]) m.cores.get(id)?.handleTimeout(1000);
      for (const id of [1, 2, 3, 4]) expect(tags(m.cores.get(id) as VipCore)).toEqual(["VipSettled"]);
      for (const id of m.survivors) {
        const c = m.cores.get(id) as VipCore;
        c.handleView(m.v2(id), 1010);
        expect(c.table?.members.every((x) => !x.settled)).toBe(true);
      }
      m.pump(m.v2(1), 1010);
      for (const id of m.survivors)
        expect(
          m.cores.get(id)?.table?.members.every((x) => x.settled),
          `member ${id}`,
        ).toBe(true);
    });
  });

  it("its payloads are whole wire frames from this member", () => {
    const c = new VipCore({ groups, matureMs: 0, holdOffMs: 0 }, 7, 42);
    c.start(0);
    c.handleView(view(1, [7], 7), 0);
    const f = decode(c.takeTransmits()[0] as Uint8Array);
    expect(f.sender).toBe(7);
    expect(f.incarnation).toBe(42);
    expect(f.msg._tag).toBe("VipState");
  });
});

describe("VipNode", () => {
  it("reports address-driver failures as driverError events (never swallowed) and keeps running", async () => {
    const { Simulator } = await import("@spines-ts/netsim");
    const { DryRunAddressDriver, VipNode } = await import("../src/index.ts");
    const sim = new Simulator({ seed: 3 });
    const driver = new DryRunAddressDriver();
    driver.failing.add("g1");
    const errors: string[] = [];
    sim.addNode(
      1,
      (host) =>
        new VipNode(host, {
          vip: { groups, matureMs: 0, holdOffMs: 0 },
          membership: { group: "vip", peers: [1] },
          driver,
          onEvent: (e) => {
            if (e.type === "driverError") errors.push(`${e.action} ${e.group}`);
          },
        }),
    );
    sim.run(1000);
    expect(errors).toEqual(["acquire g1"]);
    expect(driver.records.filter((r) => r.op === "acquire").map((r) => r.group)).toEqual([
      "g0",
      "g1",
      "g2",
      "g3",
    ]);
    expect([...driver.up].sort()).toEqual([
      "eth0 10.0.0.1/32",
      "eth0 10.0.2.1/32",
      "eth0 10.0.3.1/32",
      "eth1 fd00::3/128",
    ]);
    sim.program<InstanceType<typeof VipNode>>(1)?.stop();
    expect(driver.up.size).toBe(0);
  });

  it("runs an asynchronous driver's operations in order per group and side by side across groups", async () => {
    const { Simulator } = await import("@spines-ts/netsim");
    const { VipNode } = await import("../src/index.ts");
    const log: string[] = [];
    const gates: (() => void)[] = [];
    const op = (what: string) =>
      new Promise<void>((resolve) => {
        log.push(`start ${what}`);
        gates.push(() => {
          log.push(`end ${what}`);
          resolve();
        });
      });
    const driver = {
      acquire: (g: { name: string }) => op(`acquire ${g.name}`),
      release: (g: { name: string }) => op(`release ${g.name}`),
    };
    const sim = new Simulator({ seed: 3 });
    sim.addNode(
      1,
      (host) =>
        new VipNode(host, {
          vip: { groups, matureMs: 0, holdOffMs: 0 },
          membership: { group: "vip", peers: [1] },
          driver,
        }),
    );
    sim.run(1000);
    // every group's acquire started before any finished: different groups do not wait for each other
    expect(log).toEqual(["start acquire g0", "start acquire g1", "start acquire g2", "start acquire g3"]);
    const node = sim.program<InstanceType<typeof VipNode>>(1);
    node?.stop(); // releases every group: each waits for its own acquire
    expect(log.filter((l) => l.startsWith("start release"))).toEqual([]);
    const idle = node?.idle();
    // finish the acquires one by one (g3 first): each group's release starts right after its acquire
    for (const i of [3, 0, 2, 1]) {
      gates[i]?.();
      await new Promise((r) => setTimeout(r, 0));
    }
    const order = log.slice(4);
    for (const g of ["g0", "g1", "g2", "g3"])
      expect(order.indexOf(`start release ${g}`)).toBe(order.indexOf(`end acquire ${g}`) + 1);
    for (const gate of gates.slice(4)) gate();
    await idle;
    expect(log.filter((l) => l.startsWith("end release")).length).toBe(4);
  });
});
