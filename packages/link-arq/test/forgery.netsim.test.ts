/**
 * Issue 12: forged frames from a neighbour's address change no link (netsim, many seeds; a failing
 * seed is named and replays with NETSIM_SEED=<seed>). The attacker knows both incarnations but
 * cannot see the nonces in the hellos, like an off-path attacker (docs/security.md).
 */
import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { runForgerySeed } from "./support/forgery.ts";

const SEEDS = 60;

describe("forged hellos, goodbyes, flipped bits and data under unproven incarnations (netsim)", () => {
  for (const wrap of [false, true]) {
    it(`change no link and lose no data on a lossy link${wrap ? ", across the 2^32 sequence wrap" : ""}; ${SEEDS} seeds`, () => {
      const total: Record<string, number> = {};
      forEachSeed(
        SEEDS,
        (seed) => {
          const r = runForgerySeed(seed, { packets: 300, wrap });
          expect(r.restarts).toBe(0);
          expect(r.goodbyeDowns).toBe(0);
          expect(r.incarnationsKept).toBe(true);
          expect(r.duplicates).toBe(0);
          expect(r.delivered).toBe(600);
          if (wrap) expect(r.wrapped).toBe(true);
          // (Counted as forged goodbyes once the link has proven the peer, as unproven before.)
          expect(r.forgedGoodbyes + r.unproven).toBeGreaterThanOrEqual(r.kinds.goodbye! + r.kinds.flipped!);
          for (const [k, v] of Object.entries(r.kinds)) total[k] = (total[k] ?? 0) + v;
        },
        { startSeed: wrap ? 5001 : 1 },
      );
      // Every kind of forgery was really tried, many times.
      for (const k of ["hello", "goodbye", "flipped", "data"]) expect(total[k]).toBeGreaterThan(SEEDS * 5);
    });
  }
});
