import { describe, expect, it } from "vitest";
import { countViolations, parseLinkEvent, portDownAt } from "../bench/cluster.ts";

describe("fail-over bench: violations from address events", () => {
  const base = {
    initial: new Map([
      [1, new Set(["v"])],
      [2, new Set<string>()],
    ]),
    initialAt: 0,
    vips: ["v"],
    from: 10,
    to: 100,
    members: new Map([
      [1, Number.POSITIVE_INFINITY],
      [2, Number.POSITIVE_INFINITY],
    ]),
    settledAt: new Map([["v", 50]]),
  };
  const events = [
    { t: 20, node: 2, vip: "v", add: true }, // node 2 takes v while node 1 still holds it
    { t: 30, node: 1, vip: "v", add: false },
    { t: 60, node: 2, vip: "v", add: false }, // after the fail-over completed: nobody holds it
  ];

  it("counts a double holding in one component and a VIP held by nobody after it settled", () => {
    const r = countViolations({ ...base, events });
    expect([r.twice, r.nobody, r.splitHolds]).toEqual([1, 1, 0]);
    expect(r.details.join("; ")).toMatch(/v twice at \+10\.0 ms.*v nobody at \+50\.0 ms/);
  });

  it("does not count holders in different components (a flap) as a violation, but reports them", () => {
    // nodes 1 and 2 had each other out of their views from t=15 to t=40
    const sameComponent = (a: number, b: number, t: number) => a === b || t < 15 || t >= 40;
    const r = countViolations({ ...base, events, sameComponent });
    expect([r.twice, r.nobody, r.splitHolds]).toEqual([0, 1, 1]);
    // one-sided: node 2 sees node 1, node 1 does not see node 2: still two components
    const oneSided = (a: number, _b: number, t: number) => a === 2 || t < 15 || t >= 40;
    expect(countViolations({ ...base, events, sameComponent: oneSided }).splitHolds).toBe(1);
    // both see each other: a violation
    expect(countViolations({ ...base, events, sameComponent: () => true }).twice).toBe(1);
  });
});

describe("fail-over bench: the time of a cut from `ip monitor link`", () => {
  const lines = [
    "[2026-12-03T11:05:00.100000] 4: p2@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master br0 state UP",
    "[2026-12-03T11:05:01.250500] 4: p2@if3: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue master br0 state DOWN",
    "[2026-12-03T11:05:01.300000] 5: p3@if4: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue master br0 state DOWN",
    "Deleted something else",
  ];
  const events = lines.flatMap((l) => parseLinkEvent(l) ?? []);

  it("parses the port, its state and the time stamp", () => {
    expect(events.map((e) => [e.port, e.down])).toEqual([
      ["p2", false],
      ["p2", true],
      ["p3", true],
    ]);
    expect((events[1]?.t ?? 0) - (events[0]?.t ?? 0)).toBeCloseTo(1150.5, 0);
  });

  it("finds the first down event of the port at or after the request", () => {
    const t0 = events[0]?.t ?? 0;
    expect(portDownAt(events, "p2", t0)).toBe(events[1]?.t);
    expect(portDownAt(events, "p3", t0)).toBe(events[2]?.t);
    expect(portDownAt(events, "p2", (events[1]?.t ?? 0) + 1)).toBeUndefined();
    expect(portDownAt(events, "p4", t0)).toBeUndefined();
  });
});
