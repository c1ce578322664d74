import { createSocket } from "node:dgram";
import { CapacityError, ManualClock, MemoryLogger } from "@spines-ts/primitives";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_TIMER_DELAY_MS, PreciseTimer, UdpHost } from "../src/index.ts";
import { literalLookup } from "../src/udp-host.ts";

const hosts: UdpHost[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

async function pair(address: string) {
  const a = await UdpHost.open({ id: 1, listen: { address, port: 0 }, seed: 1 });
  const b = await UdpHost.open({ id: 2, listen: { address, port: 0 }, seed: 2 });
  hosts.push(a, b);
  a.setPeer(2, b.address());
  b.setPeer(1, a.address());
  return { a, b };
}

function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() - t0 > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe("UdpHost", () => {
  it.each(["127.0.0.1", "::1"])("exchanges datagrams between peers over %s", async (address) => {
    const { a, b } = await pair(address);
    const got: [number, string][] = [];
    b.attach({ receive: (from, data) => got.push([from, Buffer.from(data).toString()]) });
    const buf = Buffer.from("hello");
    a.send(2, buf);
    buf.write("XXXXX"); // the host copied it
    a.send(2, Buffer.from("again"));
    await waitFor(() => got.length === 2, "two datagrams");
    expect(got).toEqual([
      [1, "hello"],
      [1, "again"],
    ]);
    expect(a.stats.txPackets).toBe(2);
    expect(b.stats.rxPackets).toBe(2);
  });

  it("a dual-stack socket reaches IPv4 peers", async () => {
    const v6 = await UdpHost.open({ id: 1, listen: { address: "::", port: 0 } });
    const v4 = await UdpHost.open({ id: 2, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(v6, v4);
    v6.setPeer(2, v4.address());
    v4.setPeer(1, { address: "127.0.0.1", port: v6.address().port });
    const got: number[] = [];
    v6.attach({ receive: (from) => got.push(from) });
    v4.attach({ receive: (from) => got.push(from) });
    v6.send(2, Uint8Array.of(1));
    v4.send(1, Uint8Array.of(2));
    await waitFor(() => got.length === 2, "both directions");
    expect(got.sort()).toEqual([1, 2]);
  });

  it("counts datagrams from unknown endpoints and handler errors, and keeps serving", async () => {
    const log = new MemoryLogger();
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, log });
    hosts.push(h);
    const raw = createSocket("udp4");
    await new Promise<void>((r) => raw.bind(0, "127.0.0.1", () => r()));
    const rawPort = (raw.address() as { port: number }).port;
    let n = 0;
    h.attach({
      receive: (_from, data) => {
        n++;
        if (data[0] === 0xff) throw new Error("boom");
      },
    });
    raw.send(Uint8Array.of(1), h.address().port, "127.0.0.1");
    await waitFor(() => h.stats.rxUnknownPeer === 1, "unknown peer counted");
    h.setPeer(9, { address: "127.0.0.1", port: rawPort });
    for (let i = 0; i < 20; i++) raw.send(Uint8Array.of(0xff), h.address().port, "127.0.0.1");
    raw.send(Uint8Array.of(1), h.address().port, "127.0.0.1");
    await waitFor(() => n === 21, "all delivered");
    expect(h.stats.rxHandlerErrors).toBe(20);
    // Rate-limited: 5 per second get logged.
    expect(log.records.filter((r) => r.msg?.includes("threw")).length).toBeLessThanOrEqual(5);
    raw.close();
  });

  it("runs timers in deadline order on one real timer, and survives a throwing callback", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(h);
    const now = h.clock.now();
    const order: number[] = [];
    h.schedule(now + 30, () => order.push(3));
    h.schedule(now + 10, () => order.push(1));
    const cancel = h.schedule(now + 15, () => order.push(99));
    h.schedule(now + 20, () => {
      order.push(2);
      throw new Error("timer boom");
    });
    h.schedule(now + 20, () => order.push(2.5));
    cancel();
    await waitFor(() => order.length === 4, "timers");
    expect(order).toEqual([1, 2, 2.5, 3]);
    expect(h.stats.timerErrors).toBe(1);
    expect(h.pendingTimers).toBe(0);
  });
});

describe("UdpHost timers", () => {
  it("keeps its timeout while deadlines due now come and go (one setTimeout, not one per turn)", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, preciseTimer: false });
    hosts.push(h);
    let late = false;
    h.schedule(h.clock.now() + 200, () => {
      late = true;
    });
    const setT = vi.spyOn(globalThis, "setTimeout");
    const clearT = vi.spyOn(globalThis, "clearTimeout");
    try {
      // 20 turns that each have a deadline due now (a coalesced ack) and a later one that moves
      // (a retransmission timeout pushed by each send) — the busy daemon's pattern.
      let ran = 0;
      for (let i = 0; i < 20; i++) {
        h.schedule(h.clock.now(), () => {
          ran++;
          h.schedule(h.clock.now() + 250 + i, () => {});
        });
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
      }
      expect(ran).toBe(20);
      const hostTimeouts = setT.mock.calls.filter(([fn]) => typeof fn === "function" && fn.name !== "tick");
      expect(hostTimeouts.length).toBe(0);
      expect(clearT).not.toHaveBeenCalled();
    } finally {
      setT.mockRestore();
      clearT.mockRestore();
    }
    await waitFor(() => late, "the 200 ms timer");
  });

  it("keeps its timeout when the clock moves between reads (a loaded machine), not re-created", async () => {
    // Every read of this clock is 0.4 ms after the previous one, like a process descheduled
    // between two reads: the armed timeout's sub-millisecond rounding must not re-create it.
    let t = 1000;
    const h = await UdpHost.open({
      id: 1,
      listen: { address: "127.0.0.1", port: 0 },
      preciseTimer: false,
      clock: { now: () => (t += 0.4) },
    });
    hosts.push(h);
    h.schedule(h.clock.now() + 200, () => {});
    const setT = vi.spyOn(globalThis, "setTimeout");
    const clearT = vi.spyOn(globalThis, "clearTimeout");
    try {
      for (let i = 0; i < 20; i++) {
        h.schedule(h.clock.now(), () => {});
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
      }
      const hostTimeouts = setT.mock.calls.filter(([fn]) => typeof fn === "function" && fn.name !== "tick");
      expect(hostTimeouts.length).toBe(0);
      expect(clearT).not.toHaveBeenCalled();
    } finally {
      setT.mockRestore();
      clearT.mockRestore();
    }
  });

  it("arms no real timer for schedule(Infinity) and never wakes for it", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(h);
    let fired = false;
    h.schedule(Number.POSITIVE_INFINITY, () => {
      fired = true;
    });
    expect(h.timerArmed).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toBe(false);
    expect(h.stats.timerWakeups).toBe(0);
    // A real deadline still arms, and Infinity does not disturb it.
    let real = false;
    h.schedule(h.clock.now() + 2, () => {
      real = true;
    });
    expect(h.timerArmed).toBe(true);
    await waitFor(() => real, "the finite timer");
    expect(h.timerArmed).toBe(false);
    expect(fired).toBe(false);
  });

  it("reaches deadlines beyond setTimeout's range in clamped steps", async () => {
    const h = await UdpHost.open({
      id: 1,
      listen: { address: "127.0.0.1", port: 0 },
      preciseTimer: false,
      clock: { now: () => Date.now() },
    });
    hosts.push(h);
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate", "Date"] });
    const t0 = Date.now();
    const far = t0 + MAX_TIMER_DELAY_MS + 1000;
    let firedAt = -1;
    h.schedule(far, () => {
      firedAt = Date.now();
    });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1); // an overflowed setTimeout would fire after 1 ms
    expect(h.stats.timerWakeups).toBe(0);
    vi.advanceTimersByTime(MAX_TIMER_DELAY_MS - 1);
    expect(h.stats.timerWakeups).toBe(1);
    expect(firedAt).toBe(-1);
    vi.advanceTimersByTime(1000);
    expect(firedAt).toBe(far);
    expect(h.stats.timerWakeups).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("waits for a sub-millisecond deadline with one immediate, then a 1 ms timeout, not a spin", async () => {
    const clock = new ManualClock(1000);
    const h = await UdpHost.open({
      id: 1,
      listen: { address: "127.0.0.1", port: 0 },
      preciseTimer: false,
      clock,
    });
    hosts.push(h);
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate"] });
    let fired = 0;
    h.schedule(1000.4, () => fired++);
    // The clock does not move: a spinning host would wake again and again.
    for (let i = 0; i < 20; i++) vi.advanceTimersToNextTimer();
    expect(fired).toBe(0);
    // One immediate, then one 1 ms timeout per advance: each idle wake arms a timeout, never an immediate.
    expect(h.stats.timerWakeups).toBe(20);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(h.stats.timerWakeups).toBe(21);
    clock.advance(0.5);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("with the precise timer, each sub-millisecond deadline costs one wakeup and fires at or after it", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(h);
    await waitFor(() => PreciseTimer.ready, "the timer worker");
    let fires = 0;
    let due = 0;
    const late: number[] = [];
    const step = () => {
      late.push(h.clock.now() - due);
      fires++;
      if (fires < 100) {
        due = h.clock.now() + 0.3;
        h.schedule(due, step);
      }
    };
    due = h.clock.now() + 0.3;
    h.schedule(due, step);
    await waitFor(() => fires === 100, "100 chained timers");
    // The setTimeout scheme needs an immediate that comes too early and then a 1 ms timeout: two
    // or more wakeups per deadline. A few spare for a worker message that crossed a re-arm.
    expect(h.stats.timerWakeups).toBeLessThanOrEqual(fires + 5);
    for (const l of late) expect(l).toBeGreaterThanOrEqual(0);
  });

  it("chains of sub-millisecond timers cost at most three wakeups per fire", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, preciseTimer: false });
    hosts.push(h);
    let fires = 0;
    const step = () => {
      fires++;
      if (fires < 100) h.schedule(h.clock.now() + 0.3, step);
    };
    h.schedule(h.clock.now() + 0.3, step);
    await waitFor(() => fires === 100, "100 chained timers");
    // An immediate that comes too early, then 1 ms timeouts that Node's ms-truncated loop clock may
    // fire early once: at most three wakeups per deadline (a spinning host takes dozens).
    expect(h.stats.timerWakeups).toBeLessThanOrEqual(3 * fires);
    expect(h.stats.timerWakeups).toBeGreaterThanOrEqual(fires);
  });

  it("runs callbacks scheduled in the past on the next turn, and nothing after close", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(h);
    let past = false;
    h.schedule(h.clock.now() - 1000, () => {
      past = true;
    });
    expect(past).toBe(false);
    await waitFor(() => past, "the past deadline");
    await h.close();
    let late = false;
    const cancel = h.schedule(h.clock.now(), () => {
      late = true;
    });
    cancel();
    expect(h.timerArmed).toBe(false);
    await new Promise((r) => setTimeout(r, 10));
    expect(late).toBe(false);
    expect(() => h.schedule(Number.NaN, () => {})).toThrow(RangeError);
  });
});

describe("UdpHost peers and failures", () => {
  it("learns a peer that onUnknownPeer names, and counts a throwing hook", async () => {
    const { a, b } = await pair("127.0.0.1");
    b.removePeer(1);
    const got: number[] = [];
    b.attach({ receive: (from) => got.push(from) });
    b.onUnknownPeer = (data) => {
      if (data[0] === 0xee) throw new Error("hook boom");
      return data[0] === 7 ? 7 : undefined;
    };
    a.send(2, Uint8Array.of(0xee));
    a.send(2, Uint8Array.of(3)); // not claimed: dropped quietly
    a.send(2, Uint8Array.of(7)); // claimed as node 7
    a.send(2, Uint8Array.of(8)); // now from a known peer
    await waitFor(() => got.length === 2, "two deliveries");
    expect(got).toEqual([7, 7]);
    expect(b.stats.rxHandlerErrors).toBe(1);
    expect(b.stats.peersLearned).toBe(1);
    expect(b.peer(7)).toEqual(a.address());
    expect(b.peerAt({ address: "::ffff:127.0.0.1", port: a.address().port })).toBe(7);
  });

  it("rejects a bind that fails, with the socket's error", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(h);
    await expect(UdpHost.open({ id: 2, listen: h.address() })).rejects.toThrow(/EADDRINUSE/);
    await expect(
      UdpHost.open({ id: 2, listen: { address: "127.0.0.1", port: 0 }, maxPeers: 0 }),
    ).rejects.toThrow(RangeError);
  });

  it("keeps the peer table consistent and bounded", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, maxPeers: 2 });
    hosts.push(h);
    const ep = { address: "127.0.0.1", port: 9 };
    h.setPeer(5, ep);
    h.setPeer(6, ep); // the endpoint moved to another id: 5 is gone
    expect(h.peers()).toEqual([[6, ep]]);
    h.removePeer(5); // must not remove 6's mapping
    expect(h.peerAt(ep)).toBe(6);
    h.setPeer(7, { address: "127.0.0.1", port: 10 });
    expect(() => h.setPeer(8, { address: "127.0.0.1", port: 11 })).toThrow(CapacityError);
    h.setPeer(7, { address: "127.0.0.1", port: 12 }); // an existing id may move
    expect(h.peerCount).toBe(2);
    expect(h.peerAt({ address: "127.0.0.1", port: 10 })).toBeUndefined();
  });

  it("answers an IP literal's lookup at once and a host name through DNS", async () => {
    const answers: [string, number][] = [];
    const cb = (err: Error | null, address: string, family: number) => {
      expect(err).toBeNull();
      answers.push([address, family]);
    };
    literalLookup("127.0.0.1", 4, cb);
    literalLookup("::ffff:10.0.0.1", 6, cb);
    literalLookup("fe80::1", 6, cb);
    expect(answers).toEqual([
      ["127.0.0.1", 4],
      ["::ffff:10.0.0.1", 6],
      ["fe80::1", 6],
    ]); // no tick per datagram sent
    literalLookup("localhost", 4, cb);
    expect(answers.length).toBe(3);
    await waitFor(() => answers.length === 4, "the DNS answer");
    expect(answers[3]).toEqual(["127.0.0.1", 4]);
    const { a, b } = await pair("127.0.0.1");
    const got: number[] = [];
    b.attach({ receive: (_f, d) => got.push(d[0] ?? -1) });
    a.sendToEndpoint({ address: "localhost", port: b.address().port }, Uint8Array.of(7));
    a.send(2, Uint8Array.of(8));
    await waitFor(() => got.length === 2, "both datagrams");
    expect(got.sort()).toEqual([7, 8]);
  });

  it("counts sends to unknown peers, after close and those the socket refuses, and survives them", async () => {
    const { a, b } = await pair("127.0.0.1");
    a.send(99, Uint8Array.of(1));
    expect(a.stats.txNoPeer).toBe(1);
    a.sendToEndpoint(b.address(), new Uint8Array(70_000)); // too big for UDP: an async socket error
    a.sendToEndpoint({ address: "127.0.0.1", port: 0 }, Uint8Array.of(1)); // refused synchronously
    await waitFor(() => a.stats.txErrors >= 2, "two send errors");
    const got: number[] = [];
    b.attach({ receive: (_f, d) => got.push(d[0] ?? -1) });
    a.send(2, Uint8Array.of(5));
    await waitFor(() => got.length === 1, "the socket still works");
    await a.close();
    a.send(2, Uint8Array.of(1));
    a.sendOwned(2, Uint8Array.of(1));
    a.sendToEndpoint(b.address(), Uint8Array.of(1));
    expect(a.stats.txAfterClose).toBe(3);
    await a.close(); // idempotent
  });
});
