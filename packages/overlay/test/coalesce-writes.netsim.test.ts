/**
 * `coalesceWrites` (DAEMON_DEFAULTS, issue 10 throughput): the stream writes of one host turn leave
 * together, cut into full `mss` segments, instead of one segment per write. Netsim, two hops: a
 * burst of 1,000-byte writes in one turn is sent as ceil(bytes / mss) segments (one per write
 * without it), every byte arrives once and in order, and a write followed by a shutdown in the same
 * turn still delivers the data and the end. `cork()`/`uncork()` (the daemon, around the frames of
 * one client-socket read) give the same segments, sent within `uncork()`, with no host callback.
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { DAEMON_DEFAULTS, OverlayNode, sessionConfigFor } from "../src/index.ts";
import { LOCAL_LINK_QUEUE_PACKETS } from "../src/plane.ts";

const PORT = 7000;
const WRITE = 1000;
const WRITES = 40;
const MSS = 1100;

/**
 * `explicit`: the turn's writes go between `cork()` and `uncork()` (as the daemon does around the
 * frames of one client-socket read); `before`: one write of the turn comes before the `cork()`.
 */
type Explicit = "none" | "explicit" | "before";

function run(
  seed: number,
  coalesceWrites: boolean,
  mss: number | undefined = MSS,
  mtu?: number,
  explicit: Explicit = "none",
) {
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
  const uncorks0 = n(1).uncorks;
  let sent = 0;
  /** Segments sent while corked, and right after `uncork()` returned (same callback). */
  let whileCorked = -1;
  let atUncork = -1;
  // One turn: WRITES writes, then the end of the stream.
  sim.at(sim.now + 1, () => {
    const write = () => {
      const b = new Uint8Array(WRITE);
      for (let i = 0; i < WRITE; i++) b[i] = ((sent + i) * 7) % 251;
      expect(n(1).write(sid, b)).toBe(WRITE);
      sent += WRITE;
    };
    if (explicit === "before") write();
    if (explicit !== "none") n(1).cork();
    while (sent < WRITES * WRITE) write();
    if (explicit !== "none") {
      whileCorked = n(1).info(sid).segmentsSent - before;
      n(1).uncork();
      atUncork = n(1).info(sid).segmentsSent - before;
    }
    n(1).shutdown(sid);
  });
  sim.run(sim.now + 2000);
  return {
    segments: n(1).info(sid).segmentsSent - before,
    got,
    bad,
    ended,
    sent,
    whileCorked,
    atUncork,
    uncorks: n(1).uncorks - uncorks0,
  };
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

  it("cork/uncork: the writes between leave at the uncork, in full segments, with no host callback", () => {
    const full = Math.ceil((WRITES * WRITE) / MSS);
    forEachSeed(5, (seed) => {
      for (const coalesce of [true, false]) {
        const r = run(seed, coalesce, MSS, undefined, "explicit");
        expect(r.got).toBe(r.sent);
        expect(r.bad).toBe(0);
        expect(r.ended).toBe(true);
        expect(r.whileCorked).toBe(0);
        // sent inside `uncork()`, not at a later callback, as many as the link's share for a
        // local flow takes at once (LOCAL_LINK_QUEUE_PACKETS, 32; the rest as it sends); the FIN
        // after the shutdown
        expect(r.atUncork).toBe(Math.min(full, LOCAL_LINK_QUEUE_PACKETS));
        expect(r.segments).toBe(full + 1);
        // one release, the uncork's: no scheduled one (with coalesceWrites the shutdown's FIN
        // segment is a write of the turn too, but not a stream write: no host callback either)
        expect(r.uncorks).toBe(1);
      }
      // a write before the cork: the turn's scheduled release sends everything, still in full segments
      const b = run(seed, true, MSS, undefined, "before");
      expect(b.got).toBe(b.sent);
      expect(b.bad).toBe(0);
      expect(b.whileCorked).toBe(0);
      expect(b.atUncork).toBe(0);
      expect(b.segments).toBe(full + 1);
      expect(b.uncorks).toBe(1);
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
