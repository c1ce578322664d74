import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";

/** Two hosts that can send to each other, and the controls a case needs around them. */
export interface HostPair {
  readonly a: Host;
  readonly b: Host;
  /** A node id that is not a peer of `a`. */
  readonly unknownPeer: NodeId;
  /** Delivers datagrams that arrive at `host` to `program` from now on. */
  attach(host: Host, program: NodeProgram): void;
  /** Lets `ms` of the hosts' clock pass, running everything that falls due (virtual time: at once). */
  advance(ms: number): Promise<void>;
  /**
   * Handler exceptions so far (program `receive`, timer callbacks): counted by the host, or thrown
   * out of it to the harness, which caught and counted them and went on.
   */
  handlerErrors(): number;
  /** Sends `host` dropped without sending (no such peer, host closed): counted, never thrown. */
  unsent(host: Host): number;
  /**
   * How often `host` was woken to run timers (a real host: its timer/immediate wakeups; a simulator:
   * its timer events). Only differences are compared.
   */
  timerWakeups(host: Host): number;
  /** Closes (stops) `host`: afterwards its sends are counted no-ops and its timers never run. */
  close(host: Host): Promise<void>;
  /** Frees everything (called after every case). */
  dispose(): Promise<void>;
}

export type HostPairFactory = () => Promise<HostPair>;

export interface ComplianceCase {
  readonly name: string;
  run(pair: HostPair): Promise<void>;
}

/** Upper bound, on the hosts' clock, for waiting on something that is due (generous for loaded CI). */
const PATIENCE_MS = 5000;
const STEP_MS = 5;

/** Advances in small steps until `cond` holds; fails after PATIENCE_MS of the hosts' clock. */
async function advanceUntil(p: HostPair, cond: () => boolean, what: string): Promise<void> {
  const t0 = p.a.clock.now();
  while (!cond()) {
    if (p.a.clock.now() - t0 > PATIENCE_MS) throw new Error(`host compliance: timed out waiting for ${what}`);
    await p.advance(STEP_MS);
  }
}

const bytes = (...xs: number[]) => Uint8Array.from(xs);

export const hostComplianceCases: readonly ComplianceCase[] = [
  {
    name: "delivers a datagram to the peer with the sender's id, copied at send time",
    async run(p) {
      const got: [NodeId, number[]][] = [];
      p.attach(p.b, { receive: (from, data) => got.push([from, [...data]]) });
      const buf = bytes(1, 2, 3);
      p.a.send(p.b.id, buf);
      buf.fill(9); // the caller may reuse its buffer right after send
      await advanceUntil(p, () => got.length === 1, "the datagram");
      expect(got).toEqual([[p.a.id, [1, 2, 3]]]);
    },
  },
  {
    name: "timers fire in deadline order, ties in scheduling order, never early",
    async run(p) {
      const h = p.a;
      const t0 = h.clock.now();
      const order: string[] = [];
      const early: string[] = [];
      const at = (name: string, dt: number) =>
        h.schedule(t0 + dt, () => {
          if (h.clock.now() < t0 + dt) early.push(name);
          order.push(name);
        });
      at("c", 30);
      at("a1", 10);
      at("b1", 20);
      at("b2", 20);
      at("a2", 10);
      at("b3", 20);
      await advanceUntil(p, () => order.length === 6, "six timers");
      expect(order).toEqual(["a1", "a2", "b1", "b2", "b3", "c"]);
      expect(early).toEqual([]);
    },
  },
  {
    name: "schedule(Infinity) never fires and does not keep the host busy",
    async run(p) {
      const h = p.a;
      let fired = 0;
      const w0 = p.timerWakeups(h);
      h.schedule(Number.POSITIVE_INFINITY, () => fired++);
      await p.advance(50);
      expect(p.timerWakeups(h) - w0, "wakeups with only an Infinity timer pending").toBe(0);
      // After a finite timer runs, the Infinity one is the earliest left: still nothing to arm.
      let finite = false;
      h.schedule(h.clock.now() + 5, () => {
        finite = true;
      });
      await advanceUntil(p, () => finite, "the finite timer");
      const w1 = p.timerWakeups(h);
      await p.advance(50);
      expect(p.timerWakeups(h) - w1, "wakeups after the last finite timer ran").toBe(0);
      expect(fired).toBe(0);
    },
  },
  {
    // A real host may wake once too early for a deadline under 1 ms away (setTimeout has whole
    // milliseconds, and Node's loop clock is truncated to them), and again after a 1 ms timeout
    // that fires early for the same reason: three wakeups at most, against dozens when it spins.
    name: "waiting for a sub-millisecond deadline takes at most three wakeups (no spinning)",
    async run(p) {
      const h = p.a;
      let fired = false;
      const w0 = p.timerWakeups(h);
      h.schedule(h.clock.now() + 0.9, () => {
        fired = true;
      });
      await advanceUntil(p, () => fired, "the timer");
      expect(p.timerWakeups(h) - w0, "wakeups for one deadline 0.9 ms away").toBeLessThanOrEqual(3);
    },
  },
  {
    name: "a cancelled timer never fires; cancelling twice or after the fire is harmless",
    async run(p) {
      const h = p.a;
      const t0 = h.clock.now();
      const fired: string[] = [];
      const cx = h.schedule(t0 + 5, () => fired.push("x"));
      const cy = h.schedule(t0 + 10, () => fired.push("y"));
      cx();
      cx();
      await advanceUntil(p, () => fired.length === 1, "y");
      cy();
      await p.advance(20);
      expect(fired).toEqual(["y"]);
    },
  },
  {
    name: "a callback can cancel timers due at the same instant or later, and itself",
    async run(p) {
      const h = p.a;
      const t0 = h.clock.now();
      const fired: string[] = [];
      let cancelSame = () => {};
      let cancelLater = () => {};
      const cancelFirst = h.schedule(t0 + 10, () => {
        fired.push("first");
        cancelSame();
        cancelLater();
        cancelFirst(); // cancelling the running timer itself is harmless
      });
      cancelSame = h.schedule(t0 + 10, () => fired.push("same"));
      cancelLater = h.schedule(t0 + 20, () => fired.push("later"));
      h.schedule(t0 + 30, () => fired.push("last"));
      await advanceUntil(p, () => fired.includes("last"), "the last timer");
      expect(fired).toEqual(["first", "last"]);
    },
  },
  {
    name: "a callback can schedule more, even at its own deadline or at now (re-entrancy)",
    async run(p) {
      const h = p.a;
      const t0 = h.clock.now();
      const T = t0 + 10;
      const fired: string[] = [];
      h.schedule(T, () => {
        fired.push("outer");
        h.schedule(T, () => fired.push("at-own-deadline"));
        h.schedule(h.clock.now(), () => fired.push("at-now"));
        h.schedule(h.clock.now() + 5, () => fired.push("later"));
      });
      h.schedule(T, () => fired.push("sibling"));
      await advanceUntil(p, () => fired.length === 5, "five callbacks");
      expect(fired).toEqual(["outer", "sibling", "at-own-deadline", "at-now", "later"]);
    },
  },
  {
    name: "a deadline in the past fires promptly, after the scheduling code returns",
    async run(p) {
      const h = p.a;
      let fired = false;
      h.schedule(h.clock.now() - 1000, () => {
        fired = true;
      });
      expect(fired, "ran synchronously inside schedule").toBe(false);
      await p.advance(1);
      await advanceUntil(p, () => fired, "the past deadline");
    },
  },
  {
    name: "sending to an unknown peer is counted, never thrown",
    async run(p) {
      const u0 = p.unsent(p.a);
      expect(() => p.a.send(p.unknownPeer, bytes(1))).not.toThrow();
      expect(p.unsent(p.a) - u0).toBe(1);
    },
  },
  {
    name: "after close, sends are counted no-ops and timers never run",
    async run(p) {
      const got: number[] = [];
      p.attach(p.b, { receive: (_f, d) => got.push(d[0] ?? -1) });
      let fired = false;
      p.a.schedule(p.a.clock.now() + 5, () => {
        fired = true;
      });
      await p.close(p.a);
      const u0 = p.unsent(p.a);
      expect(() => p.a.send(p.b.id, bytes(1))).not.toThrow();
      expect(p.unsent(p.a) - u0).toBe(1);
      expect(() => p.a.schedule(p.a.clock.now(), () => {})).not.toThrow();
      await p.advance(30);
      expect(got).toEqual([]);
      expect(fired).toBe(false);
    },
  },
  {
    name: "a throwing handler does not stop later timers or deliveries",
    async run(p) {
      const h = p.a;
      const t0 = h.clock.now();
      const fired: string[] = [];
      h.schedule(t0 + 5, () => {
        fired.push("thrower");
        throw new Error("timer handler failure (expected by the test)");
      });
      h.schedule(t0 + 5, () => fired.push("tie"));
      h.schedule(t0 + 10, () => fired.push("later"));
      const got: number[] = [];
      p.attach(p.b, {
        receive: (_f, d) => {
          got.push(d[0] ?? -1);
          if (d[0] === 1) throw new Error("receive handler failure (expected by the test)");
        },
      });
      const e0 = p.handlerErrors();
      p.a.send(p.b.id, bytes(1));
      await advanceUntil(p, () => got.length === 1, "the first datagram");
      p.a.send(p.b.id, bytes(2));
      await advanceUntil(p, () => fired.length === 3 && got.length === 2, "the rest");
      expect(fired).toEqual(["thrower", "tie", "later"]);
      expect(got).toEqual([1, 2]);
      expect(p.handlerErrors() - e0).toBe(2);
    },
  },
];

/** Runs one case on a fresh pair and disposes of it. */
export async function runComplianceCase(c: ComplianceCase, factory: HostPairFactory): Promise<void> {
  const pair = await factory();
  try {
    await c.run(pair);
  } finally {
    await pair.dispose();
  }
}

/** Registers every case as a vitest test under `describe(name)`. */
export function hostComplianceSuite(name: string, factory: HostPairFactory): void {
  describe(`Host compliance: ${name}`, () => {
    for (const c of hostComplianceCases) it(c.name, () => runComplianceCase(c, factory));
  });
}
