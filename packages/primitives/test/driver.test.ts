import { describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock.ts";
import { CoreDriver } from "../src/driver.ts";
import { TimerQueue } from "../src/timers.ts";

/** A host whose timers are a TimerQueue on a manual clock; counts schedule calls. */
function fakeHost() {
  const clock = new ManualClock();
  const timers = new TimerQueue();
  const h = {
    clock,
    scheduled: [] as number[],
    schedule(at: number, fn: () => void) {
      h.scheduled.push(at);
      return timers.schedule(at, fn);
    },
    advance(to: number) {
      for (;;) {
        const d = timers.nextDeadline();
        if (d === undefined || d > to) break;
        clock.set(Math.max(clock.now(), d));
        timers.runDue(clock.now());
      }
      clock.set(to);
    },
    get pending() {
      return timers.pending;
    },
  };
  return h;
}

/** A toy core: `ping(n)` queues n transmits; its deadline is `deadline`; a timeout emits "tick". */
class Toy {
  deadline: number | undefined = undefined;
  out: string[] = [];
  events: string[] = [];
  timeouts: number[] = [];
  ping(n: number) {
    for (let i = 0; i < n; i++) this.out.push(`p${i}`);
  }
  handleTimeout(now: number) {
    this.timeouts.push(now);
    this.deadline = undefined;
    this.events.push("tick");
  }
}

function setup(onEvent: (e: string) => void = () => {}) {
  const host = fakeHost();
  const core = new Toy();
  const sent: string[] = [];
  const d = new CoreDriver(host, {
    drain() {
      let progress = false;
      for (const t of core.out.splice(0)) {
        sent.push(t);
        progress = true;
      }
      for (const e of core.events.splice(0)) {
        onEvent(e);
        progress = true;
      }
      return progress;
    },
    nextDeadline: () => core.deadline,
    handleTimeout: (now) => core.handleTimeout(now),
  });
  return { host, core, sent, d };
}

describe("CoreDriver", () => {
  it("drains after every input and arms one timer, re-armed only when the deadline changes", () => {
    const { host, core, sent, d } = setup();
    core.deadline = 100;
    expect(d.input(() => core.ping(2))).toBeUndefined();
    expect(sent).toEqual(["p0", "p1"]);
    expect(host.scheduled).toEqual([100]);
    d.input(() => core.ping(1));
    expect(host.scheduled).toEqual([100]); // unchanged deadline: no re-arm
    core.deadline = 50;
    d.flush();
    expect(host.scheduled).toEqual([100, 50]);
    expect(host.pending).toBe(1); // the old one was cancelled
    expect(d.armedFor).toBe(50);
  });

  it("never arms for Infinity or undefined, and disarms when the deadline goes away", () => {
    const { host, core, d } = setup();
    core.deadline = Number.POSITIVE_INFINITY;
    d.flush();
    expect(host.scheduled).toEqual([]);
    core.deadline = 10;
    d.flush();
    core.deadline = undefined;
    d.flush();
    expect(host.pending).toBe(0);
    expect(d.armedFor).toBeUndefined();
  });

  it("runs the core's timer at its deadline (never earlier) and drains what it produced", () => {
    const events: string[] = [];
    const { host, core, d } = setup((e) => events.push(e));
    core.deadline = 30;
    d.flush();
    host.advance(29);
    expect(core.timeouts).toEqual([]);
    host.advance(40);
    expect(core.timeouts).toEqual([30]);
    expect(events).toEqual(["tick"]);
    // A deadline already in the past is armed for now.
    host.clock.set(100);
    core.deadline = 60;
    d.flush();
    expect(host.scheduled.at(-1)).toBe(100);
  });

  it("folds a re-entrant input into the running flush and arms once at the end", () => {
    let d!: CoreDriver;
    let core!: Toy;
    let reentered = 0;
    const s = setup((e) => {
      if (e === "tick" && reentered++ === 0) {
        expect(d.flushing).toBe(true);
        core.deadline = 500;
        expect(
          d.input(() => {
            core.ping(1);
            return "result";
          }),
        ).toBe("result");
      }
    });
    d = s.d;
    core = s.core;
    core.deadline = 10;
    d.flush();
    s.host.advance(10);
    expect(s.sent).toEqual(["p0"]); // the re-entrant input's transmit was drained by the outer loop
    expect(s.host.scheduled).toEqual([10, 500]);
  });

  it("stops draining when a pass made no progress, even if re-entered", () => {
    let passes = 0;
    const host = fakeHost();
    let d!: CoreDriver;
    d = new CoreDriver(host, {
      drain() {
        passes++;
        if (passes < 100) d.flush(); // a callback that re-enters but hands nothing over
        return false;
      },
      nextDeadline: () => undefined,
      handleTimeout: () => {},
    });
    d.flush();
    expect(passes).toBe(1);
  });

  it("stop() cancels the timer and ignores later input", () => {
    const { host, core, d, sent } = setup();
    core.deadline = 5;
    d.flush();
    d.stop();
    expect(host.pending).toBe(0);
    expect(d.input(() => core.ping(1))).toBeUndefined();
    expect(sent).toEqual([]);
    expect(core.out).toEqual([]);
    host.advance(10);
    expect(core.timeouts).toEqual([]);
  });

  it("a declined timeout re-arms nothing until the next flush", () => {
    const host = fakeHost();
    let paused = true;
    let fired = 0;
    const d = new CoreDriver(host, {
      drain: () => false,
      nextDeadline: () => (fired === 0 ? 5 : undefined),
      handleTimeout: () => {
        if (paused) return false;
        fired++;
        return undefined;
      },
    });
    d.flush();
    host.advance(10);
    expect(host.scheduled).toEqual([5]);
    expect(host.pending).toBe(0);
    paused = false;
    d.flush();
    host.advance(11);
    expect(fired).toBe(1);
  });
});
