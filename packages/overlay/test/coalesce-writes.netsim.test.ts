/**
 * `coalesceWrites` (DAEMON_DEFAULTS, issue 10 throughput): the stream writes of one host turn leave
 * together, cut into full `mss` segments, instead of one segment per write. Netsim, two hops: a
 * burst of 1,000-byte writes in one turn is sent as ceil(bytes / mss) segments (one per write
 * without it), every byte arrives once and in order, and a write followed by a shutdown in the same
 * turn still delivers the data and the end.
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { DAEMON_DEFAULTS, OverlayNode, sessionConfigFor } from "../src/index.ts";

const PORT = 7000;
const WRITE = 1000;
const WRITES = 40;
const MSS = 1100;

function run(seed: number, coalesceWrites: boolean, mss: number | undefined = MSS, mtu?: number) {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const opts = {
    ...DAEMON_DEFAULTS,
    coalesceWrites,
    link: { ...DAEMON_DEFAULTS.link, ...(mtu !== undefined ? { mtu } : {}) },
    session: { ...DAEMON_DEFAULTS.session, ...(mss !== undefined ? { mss } : {}) },
  };
  let got = 0;
  let bad = 0;
  let ended = false;
  let server: number | undefined;
  const n = (id: number) => sim.program<OverlayNode>(id) as OverlayNode;
  sim.addNode(1, OverlayNode.factory({ ...opts, neighbors: [2] }));
  sim.addNode(2, OverlayNode.factory({ ...opts, neighbors: [1, 3] }));
  sim.addNode(
    3,
    OverlayNode.factory({
      ...opts,
      neighbors: [2],
      onEvent: (e, node) => {
        if (e.type === "incoming") server = node.accept(PORT);
        if (server === undefined) return;
        if (e.type === "readable" || e.type === "end" || e.type === "incoming") {
          for (let b = node.read(server); b.length > 0; b = node.read(server)) {
            for (let i = 0; i < b.length; i++) if (b[i] !== ((got + i) * 7) % 251) bad++;
            got += b.length;
          }
        }
        if (e.type === "end") ended = true;
      },
    }),
  );
  sim.connect(1, 2, { delayMs: 2 });
  sim.connect(2, 3, { delayMs: 2 });
  sim.run(3000);
  n(3).listen(PORT);
  const sid = n(1).connect(3, PORT, { linkType: 1 });
  sim.run(sim.now + 500);
  expect(n(1).info(sid).state).toBe("open");
  const before = n(1).info(sid).segmentsSent;
  let sent = 0;
  // One turn: WRITES writes, then the end of the stream.
  sim.at(sim.now + 1, () => {
    for (let w = 0; w < WRITES; w++) {
      const b = new Uint8Array(WRITE);
      for (let i = 0; i < WRITE; i++) b[i] = ((sent + i) * 7) % 251;
      expect(n(1).write(sid, b)).toBe(WRITE);
      sent += WRITE;
    }
    n(1).shutdown(sid);
  });
  sim.run(sim.now + 2000);
  return { segments: n(1).info(sid).segmentsSent - before, got, bad, ended, sent };
}

describe("coalesced stream writes (netsim)", () => {
  it("the writes of one turn leave in full segments, every byte once and in order, 10 seeds", () => {
    forEachSeed(10, (seed) => {
      const on = run(seed, true);
      expect(on.got).toBe(on.sent);
      expect(on.bad).toBe(0);
      expect(on.ended).toBe(true);
      // data segments plus the FIN
      expect(on.segments).toBe(Math.ceil((WRITES * WRITE) / MSS) + 1);
      const off = run(seed, false);
      expect(off.got).toBe(off.sent);
      expect(off.bad).toBe(0);
      expect(off.segments).toBe(WRITES + 1);
    });
  });

  it("the daemon's mss is cut to fit a smaller link mtu, and the stream still carries every byte", () => {
    expect(sessionConfigFor(DAEMON_DEFAULTS.session, DAEMON_DEFAULTS.link)?.mss).toBe(1300);
    // 1,400 − 44 (link data frame) − 18 (payload form and SessionData fields)
    expect(sessionConfigFor({ mss: 2000 }, {})?.mss).toBe(1338);
    expect(sessionConfigFor(DAEMON_DEFAULTS.session, { mtu: 1000 })?.mss).toBe(938);
    expect(sessionConfigFor({ mss: 500 }, { mtu: 1000 })?.mss).toBe(500);
    forEachSeed(3, (seed) => {
      const r = run(seed, true, undefined, 1000);
      expect(r.got).toBe(r.sent);
      expect(r.bad).toBe(0);
      expect(r.ended).toBe(true);
      expect(r.segments).toBe(Math.ceil((WRITES * WRITE) / 938) + 1);
    });
  });
});
