import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng, type SpinesError } from "@spines-ts/primitives";
import { encode, ResetReason } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import {
  ConnectionRefusedError,
  ConnectTimeoutError,
  PeerDeadError,
  SessionDriver,
  type SessionEvent,
  SessionResetError,
} from "../src/index.ts";
import { randomLink } from "./harness.ts";

interface Log {
  events: { t: number; node: number; e: SessionEvent }[];
}

function pair(
  seed: number,
  link: Parameters<Simulator["connect"]>[2],
  config: Record<string, number>,
  log: Log,
) {
  const sim = new Simulator({ seed, traceCapacity: 100 });
  const on = (node: number) => (e: SessionEvent, d: SessionDriver) => {
    log.events.push({ t: d.now, node, e });
    if (e.type === "incoming") d.accept(e.port);
    if (e.type === "readable") d.read(e.sid);
  };
  sim.addNode(
    1,
    SessionDriver.factory({ config, onEvent: on(1) }, (d) => d.listen(80)),
  );
  sim.addNode(2, SessionDriver.factory({ config, onEvent: on(2) }));
  sim.connect(1, 2, link);
  return sim;
}

function closedOf(log: Log, node: number): { t: number; error: SpinesError | undefined } | undefined {
  for (const x of log.events)
    if (x.node === node && x.e.type === "closed") return { t: x.t, error: x.e.error };
  return undefined;
}

describe("dead-peer detection (netsim)", () => {
  it("1,000 seeds: a crashed peer ends the session with PeerDeadError within the configured time, never earlier", () => {
    forEachSeed(Number(process.env.SESSION_STRESS_SEEDS ?? 1000), (seed) => {
      const rng = new Rng(seed);
      const link = randomLink(rng, 0.2);
      const timeout = 2000 + rng.int(4000);
      const keepalive = 200 + rng.int(300);
      const log: Log = { events: [] };
      const sim = pair(
        seed,
        link,
        { deadPeerTimeoutMs: timeout, keepaliveIntervalMs: keepalive, initialRtoMs: 200 },
        log,
      );
      let sid = 0;
      sim.at(1, (s) => {
        sid = s.program<SessionDriver>(2)!.connect(1, 80);
      });
      // some traffic, then idle, then one end dies
      sim.at(500, (s) => {
        const d = s.program<SessionDriver>(2)!;
        if (d.core.sessionIds().includes(sid) && d.core.info(sid).state === "open")
          d.write(sid, new Uint8Array(5000));
      });
      // crash only once the session is up (an open that never completes is the connect timeout's case)
      const up = sim.runUntil(() => log.events.some((x) => x.node === 2 && x.e.type === "connected"), 60_000);
      expect(up, `seed ${seed}: connected`).toBe(true);
      const crashAt = Math.max(sim.now, 600) + 2000 + rng.uniform(0, 20_000);
      // either end may die; the survivor must notice
      const victim = rng.chance(0.5) ? 1 : 2;
      const survivor = 3 - victim;
      sim.at(crashAt, (s) => s.crash(victim));
      sim.addInvariant("no death while the peer is up", (s) => {
        const c = closedOf(log, survivor);
        if (c !== undefined && s.isUp(victim))
          return `session ended at ${c.t} while the peer was up: ${c.error?.message}`;
        return undefined;
      });
      sim.run(crashAt + timeout + 5000);
      const c = closedOf(log, survivor);
      expect(c, `seed ${seed}: no closed event`).toBeDefined();
      expect(c?.error).toBeInstanceOf(PeerDeadError);
      expect(c?.error?.code).toBe("ERR_SESSION_PEER_DEAD");
      const silent = (c?.error as PeerDeadError | undefined)?.silentMs;
      expect(silent).toBeGreaterThanOrEqual(timeout - 1e-6);
      // packets already on the wire at the crash still arrive, up to one (reordered) one-way delay later
      const maxOneWay = link.delayMs + (link.jitterMs ?? 0) + (link.reorder ? (link.reorderDelayMs ?? 0) : 0);
      expect(c!.t).toBeGreaterThan(crashAt);
      expect(c!.t).toBeLessThanOrEqual(crashAt + maxOneWay + timeout + 1e-6);
      expect(sim.program<SessionDriver>(survivor)!.core.sessionCount).toBe(0);
    });
  });

  it("dead-peer detection also ends a session that is busy retransmitting", () => {
    forEachSeed(50, (seed) => {
      const log: Log = { events: [] };
      const sim = pair(seed, { delayMs: 10 }, { deadPeerTimeoutMs: 3000, initialRtoMs: 200 }, log);
      sim.at(250, (s) => s.setLink(1, 2, { loss: 0.1 }));
      let sid = 0;
      sim.at(1, (s) => {
        sid = s.program<SessionDriver>(2)!.connect(1, 80);
      });
      sim.at(300, (s) => {
        s.program<SessionDriver>(2)!.write(sid, new Uint8Array(100_000));
      });
      sim.at(400, (s) => s.linkDown(1, 2));
      sim.run(10_000);
      const c = closedOf(log, 2);
      expect(c?.error).toBeInstanceOf(PeerDeadError);
      expect((c?.error as PeerDeadError | undefined)?.silentMs).toBeGreaterThanOrEqual(3000 - 1e-6);
      // the last packet from the peer arrived between the first write and the link cut
      expect(c!.t).toBeLessThanOrEqual(400 + 3000 + 1e-6);
      expect(c!.t).toBeGreaterThan(300 + 3000);
    });
  });
});

describe("peer restart and many sessions (netsim)", () => {
  it("300 seeds: a peer that restarted answers with NoSession, ending the survivor's session long before the dead-peer timeout", () => {
    forEachSeed(300, (seed) => {
      const rng = new Rng(seed);
      const log: Log = { events: [] };
      const sim = pair(seed, randomLink(rng, 0.1), { initialRtoMs: 200, deadPeerTimeoutMs: 60_000 }, log);
      let sid = 0;
      sim.at(1, (s) => {
        sid = s.program<SessionDriver>(2)!.connect(1, 80);
      });
      const up = sim.runUntil(() => log.events.some((x) => x.node === 2 && x.e.type === "connected"), 60_000);
      expect(up).toBe(true);
      const crashAt = sim.now + rng.uniform(100, 3000);
      sim.at(crashAt, (s) => s.crash(1));
      sim.at(crashAt + 200, (s) => s.restart(1));
      // the survivor keeps sending if its session is still there (a keepalive may have met the reset already)
      sim.at(crashAt + 300, (s) => {
        const d = s.program<SessionDriver>(2)!;
        if (d.core.sessionIds().includes(sid)) d.write(sid, new Uint8Array(20_000));
      });
      sim.run(crashAt + 30_000);
      const c = closedOf(log, 2);
      expect(c?.error, `seed ${seed}`).toBeInstanceOf(SessionResetError);
      expect((c?.error as SessionResetError | undefined)?.reason).toBe(ResetReason.NoSession);
      expect(c!.t).toBeLessThan(crashAt + 200 + 10_000); // dead-peer detection would take 60 s
    });
  });

  it("200 seeds: eight concurrent sessions in both directions keep their bytes apart", () => {
    forEachSeed(200, (seed) => {
      const rng = new Rng(seed);
      const sim = new Simulator({ seed });
      const got = new Map<string, number[]>();
      const closed: string[] = [];
      const violations: string[] = [];
      const on = (node: number) => (e: SessionEvent, d: SessionDriver) => {
        if (e.type === "incoming") d.accept(e.port);
        if (e.type === "readable") {
          const i = d.core.info(e.sid);
          const key = `${node}<-${i.remoteNode}:${i.remotePort}`;
          const arr = got.get(key) ?? [];
          for (const b of d.read(e.sid)) arr.push(b);
          got.set(key, arr);
        }
        if (e.type === "end") d.close(e.sid);
        if (e.type === "closed") {
          if (e.error) violations.push(`${node}: ${e.error.message}`);
          closed.push(`${node}:${e.sid}`);
        }
      };
      const writer = new Map<number, { data: Uint8Array; off: number }>();
      const push = (e: SessionEvent, d: SessionDriver): void => {
        if (e.type !== "connected" && e.type !== "writable") return;
        const w = writer.get(e.sid);
        if (!w) return;
        while (w.off < w.data.length) {
          const n = d.write(e.sid, w.data.subarray(w.off));
          if (n === 0) return;
          w.off += n;
        }
        d.shutdown(e.sid);
      };
      for (const id of [1, 2]) {
        sim.addNode(
          id,
          SessionDriver.factory(
            {
              config: { initialRtoMs: 200, deadPeerTimeoutMs: 60_000, connectTimeoutMs: 60_000 },
              onEvent: (e, d) => {
                on(id)(e, d);
                push(e, d);
              },
            },
            (d) => {
              d.listen(80);
              d.listen(81);
            },
          ),
        );
      }
      sim.connect(1, 2, randomLink(rng, 0.1));
      // each session's bytes are its own value, so any mix-up shows
      const expected = new Map<string, number>();
      sim.at(1, (s) => {
        for (let k = 0; k < 8; k++) {
          const from = k % 2 === 0 ? 1 : 2;
          const to = 3 - from;
          const d = s.program<SessionDriver>(from)!;
          const sid = d.connect(to, 80 + (k % 3 === 0 ? 1 : 0));
          const len = 1000 + rng.int(20_000);
          writer.set(sid, { data: new Uint8Array(len).fill(k + 1), off: 0 });
          expected.set(`${to}<-${from}:${d.core.info(sid).localPort}`, k + 1);
          expected.set(`len:${to}<-${from}:${d.core.info(sid).localPort}`, len);
        }
      });
      sim.run(120_000);
      expect(violations).toEqual([]);
      expect(closed.length).toBe(16);
      for (const [key, arr] of got) {
        const v = expected.get(key);
        expect(v, key).toBeDefined();
        expect(arr.length).toBe(expected.get(`len:${key}`));
        expect(arr.every((b) => b === v)).toBe(true);
      }
      expect(got.size).toBe(8);
    });
  });
});

describe("open, refuse, reset and close semantics (netsim)", () => {
  it("connecting to a port nobody listens on fails fast with ConnectionRefusedError", () => {
    forEachSeed(100, (seed) => {
      const log: Log = { events: [] };
      const sim = pair(seed, randomLink(new Rng(seed), 0.2), { initialRtoMs: 100 }, log);
      sim.at(1, (s) => s.program<SessionDriver>(2)!.connect(1, 81));
      sim.run(20_000);
      const c = closedOf(log, 2);
      expect(c?.error).toBeInstanceOf(ConnectionRefusedError);
      expect((c?.error as ConnectionRefusedError | undefined)?.reason).toBe(ResetReason.Refused);
    });
  });

  it("connecting to a node that never answers fails with ConnectTimeoutError after connectTimeoutMs", () => {
    const log: Log = { events: [] };
    const sim = pair(1, { delayMs: 5 }, { connectTimeoutMs: 4000 }, log);
    sim.crash(1);
    sim.at(10, (s) => s.program<SessionDriver>(2)!.connect(1, 80));
    sim.run(20_000);
    const c = closedOf(log, 2);
    expect(c?.error).toBeInstanceOf(ConnectTimeoutError);
    expect(c?.t).toBe(4010);
  });

  it("reset by one side ends the other with SessionResetError; data after a reset is refused", () => {
    forEachSeed(100, (seed) => {
      const log: Log = { events: [] };
      const sim = pair(seed, randomLink(new Rng(seed), 0.2), { initialRtoMs: 200 }, log);
      let sid = 0;
      sim.at(1, (s) => {
        sid = s.program<SessionDriver>(2)!.connect(1, 80);
      });
      let resetAt = -1;
      const tryReset = (s: Simulator): void => {
        const d = s.program<SessionDriver>(2)!;
        if (d.core.info(sid).state !== "open") {
          s.after(500, tryReset);
          return;
        }
        d.write(sid, new Uint8Array(3000));
        d.reset(sid);
        resetAt = s.now;
        expect(() => d.write(sid, new Uint8Array(1))).toThrow(/no session/);
      };
      sim.at(1000, tryReset);
      sim.run(30_000);
      const c1 = closedOf(log, 1);
      const c2 = closedOf(log, 2);
      expect(resetAt).toBeGreaterThan(0);
      expect(c2?.error).toBeUndefined();
      expect(c2?.t).toBe(resetAt);
      expect(c1?.error, `seed ${seed}`).toBeInstanceOf(SessionResetError);
      // the reset may be lost; then the peer's next packet (keepalive) draws a NoSession reset
      expect([ResetReason.Application, ResetReason.NoSession]).toContain(
        (c1?.error as SessionResetError | undefined)?.reason,
      );
      expect(sim.program<SessionDriver>(1)!.core.sessionCount).toBe(0);
      expect(sim.program<SessionDriver>(2)!.core.sessionCount).toBe(0);
    });
  });

  it("half-close: the side that shut down still receives until the peer ends", () => {
    forEachSeed(100, (seed) => {
      const sim = new Simulator({ seed });
      const got: number[] = [];
      const ev: string[] = [];
      let acc = 0;
      sim.addNode(
        1,
        SessionDriver.factory(
          {
            onEvent: (e, d) => {
              if (e.type === "incoming") acc = d.accept(80)!;
              if (e.type === "readable") d.read(e.sid);
              if (e.type === "end") {
                ev.push("1:end");
                // reply after the peer's half-close, then finish
                d.write(acc, new Uint8Array(20_000).fill(7));
                d.shutdown(acc);
              }
              if (e.type === "closed") ev.push(`1:closed:${e.error?.code ?? "ok"}`);
            },
          },
          (d) => d.listen(80),
        ),
      );
      let sid = 0;
      sim.addNode(
        2,
        SessionDriver.factory({
          onEvent: (e, d) => {
            if (e.type === "connected") {
              d.write(sid, new Uint8Array(1000).fill(1));
              d.shutdown(sid);
              expect(() => d.write(sid, new Uint8Array(1))).toThrow(/shut down/);
            }
            if (e.type === "readable") for (const b of d.read(e.sid)) got.push(b);
            if (e.type === "end") ev.push("2:end");
            if (e.type === "closed") ev.push(`2:closed:${e.error?.code ?? "ok"}`);
          },
        }),
      );
      sim.connect(1, 2, randomLink(new Rng(seed), 0.2));
      sim.at(1, (s) => {
        sid = s.program<SessionDriver>(2)!.connect(1, 80);
      });
      sim.run(60_000);
      expect(got.length).toBe(20_000);
      expect(got.every((b) => b === 7)).toBe(true);
      expect(ev).toContain("1:end");
      expect(ev).toContain("2:end");
      expect(ev).toContain("1:closed:ok");
      expect(ev).toContain("2:closed:ok");
      expect(ev.indexOf("2:end")).toBeLessThan(ev.indexOf("2:closed:ok"));
    });
  });

  it("garbage and foreign frames from the network are counted and dropped by the driver", () => {
    const sim = new Simulator({ seed: 9 });
    const log: Log = { events: [] };
    sim.addNode(
      1,
      SessionDriver.factory({ onEvent: (e, d) => log.events.push({ t: d.now, node: 1, e }) }, (d) =>
        d.listen(80),
      ),
    );
    sim.addNode(3, (host) => ({
      receive() {},
      start: host.schedule(10, () => {
        const r = new Rng(3);
        for (let i = 0; i < 500; i++) host.send(1, r.bytes(r.int(120)));
        // a well-formed session frame for another node
        host.send(
          1,
          encode(
            { sender: 3, incarnation: 1 },
            {
              _tag: "SessionOpen",
              header: { src: 3, srcPort: 5, dst: 7, dstPort: 80, dstKind: 0, ttl: 9 },
              sid: 1,
              window: 1000,
              linkType: 1,
            },
          ),
        );
      }),
    }));
    sim.connect(1, 3, { delayMs: 1 });
    sim.run(1000);
    const d = sim.program<SessionDriver>(1)!;
    expect(d.core.counters.malformed + d.otherFrames).toBe(501);
    expect(d.otherFrames).toBeGreaterThanOrEqual(1);
    expect(log.events).toEqual([]);
    expect(d.core.sessionCount).toBe(0);
  });
});
