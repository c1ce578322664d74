import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocate, loads, type MemberState, NO_OWNER, settle } from "../src/index.ts";

const G_MAX = 12;

/** Arbitrary states: any holdings (duplicates allowed, as after a merge), flags, preferences. */
const anyInput = fc.integer({ min: 1, max: G_MAX }).chain((groups) =>
  fc.record({
    groups: fc.constant(groups),
    states: fc.array(
      fc.record({
        mature: fc.boolean(),
        settled: fc.boolean(),
        held: fc.uniqueArray(fc.integer({ min: 0, max: groups - 1 }), { maxLength: groups }),
        prefers: fc.uniqueArray(fc.integer({ min: 0, max: groups - 1 }), { maxLength: 2 }),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  }),
);

/**
 * Consistent states, as after a view change without a merge: every group has at most one holder
 * (NO_OWNER or a member that left: an orphan), and every settled preferrer already holds what it
 * prefers unless a holding preferrer came first (the standing rules were applied before).
 */
const consistentInput = fc.integer({ min: 1, max: G_MAX }).chain((groups) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: 6 }),
      owners: fc.array(fc.integer({ min: -1, max: 7 }), { minLength: groups, maxLength: groups }),
      settled: fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
    })
    .map(({ n, owners, settled }) => {
      const states: MemberState[] = Array.from({ length: n }, (_, i) => ({
        mature: true,
        settled: settled[i] as boolean,
        held: owners.flatMap((o, g) => (o === i ? [g] : [])),
        prefers: [],
      }));
      return { groups, states, owners };
    }),
);

function permuteArrays(states: readonly MemberState[]): MemberState[] {
  return states.map((s) => ({ ...s, held: [...s.held].reverse(), prefers: [...s.prefers].reverse() }));
}

describe("allocate (pure)", () => {
  it("is deterministic: the same view and states give the same table, whatever the order inside each state", () => {
    fc.assert(
      fc.property(anyInput, fc.integer({ min: 0, max: 20 }), ({ groups, states }, maxMoves) => {
        const a = allocate(groups, states, maxMoves);
        const b = allocate(groups, permuteArrays(states), maxMoves);
        const c = allocate(groups, structuredClone(states), maxMoves);
        expect(b.table.owner).toEqual(a.table.owner);
        expect(c.table.owner).toEqual(a.table.owner);
        expect(c.moves).toEqual(a.moves);
      }),
      { numRuns: 500 },
    );
  });

  it("exactly once: in a mature view every group has exactly one owner, a member; an immature view holds nothing", () => {
    fc.assert(
      fc.property(anyInput, fc.integer({ min: 0, max: 20 }), ({ groups, states }, maxMoves) => {
        const { table } = allocate(groups, states, maxMoves);
        expect(table.owner).toHaveLength(groups);
        const mature = states.some((s) => s.mature);
        for (const o of table.owner) {
          if (mature) expect(o >= 0 && o < states.length).toBe(true);
          else expect(o).toBe(NO_OWNER);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("after full balancing, max - min <= 1 outside preferences (max over all members, min over settled ones)", () => {
    fc.assert(
      fc.property(anyInput, ({ groups, states }) => {
        const { table } = allocate(groups, states, Number.POSITIVE_INFINITY);
        if (!table.mature || !table.members.some((m) => m.settled)) return;
        const l = loads(table);
        const max = Math.max(...l);
        const minSettled = Math.min(...l.filter((_, i) => table.members[i]?.settled));
        expect(max - minSettled).toBeLessThanOrEqual(1);
        if (table.members.every((m) => m.settled)) expect(max - Math.min(...l)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 500 },
    );
  });

  it("preferred groups held by their settled preferrer are never balanced away, and settled preferrers get them", () => {
    fc.assert(
      fc.property(anyInput, ({ groups, states }) => {
        const { table, moves } = allocate(groups, states, Number.POSITIVE_INFINITY);
        if (!table.mature) return;
        for (let g = 0; g < groups; g++) {
          const first = states.findIndex((s) => s.settled && s.prefers.includes(g));
          if (first < 0) continue;
          const o = table.owner[g] as number;
          expect(states[o]?.settled && states[o]?.prefers.includes(g)).toBe(true);
        }
        for (const m of moves)
          if (m.cause === "balance")
            expect(states[m.from]?.settled && states[m.from]?.prefers.includes(m.group)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("nothing moves without a cause: a held group stays with its holder unless a settled preferrer claims it", () => {
    fc.assert(
      fc.property(consistentInput, ({ groups, states, owners }) => {
        const { table, moves } = allocate(groups, states, 0);
        for (let g = 0; g < groups; g++) {
          const was = owners[g] as number;
          const present = was >= 0 && was < states.length;
          if (present) expect(table.owner[g], `group ${g}`).toBe(was);
        }
        // every move has a cause that its rule allows
        for (const m of moves) {
          if (m.cause === "orphan") {
            const was = owners[m.group] as number;
            expect(was < 0 || was >= states.length).toBe(true);
            const anySettled = states.some((s) => s.settled);
            if (anySettled) expect(states[m.to]?.settled).toBe(true);
          } else {
            expect(m.cause).not.toBe("balance");
            expect(m.cause).not.toBe("conflict");
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it("is idempotent: settling a settled, balanced table moves nothing", () => {
    fc.assert(
      fc.property(anyInput, ({ groups, states }) => {
        const first = allocate(groups, states, Number.POSITIVE_INFINITY);
        const again = settle(first.table, Number.POSITIVE_INFINITY);
        expect(again.moves).toEqual([]);
        expect(again.table.owner).toEqual(first.table.owner);
      }),
      { numRuns: 500 },
    );
  });

  it("orphans go to the least-loaded member, ties to the lowest index", () => {
    const s = (held: number[]): MemberState => ({ mature: true, settled: true, held, prefers: [] });
    const { table, moves } = allocate(6, [s([0, 1]), s([2]), s([])], 0);
    // groups 3, 4, 5 are orphans: member 2 (0 held) gets 3, then 1 and 2 tie at 1: member 1 gets 4, then 2 gets 5
    expect(table.owner).toEqual([0, 0, 1, 2, 1, 2]);
    expect(moves.map((m) => m.cause)).toEqual(["orphan", "orphan", "orphan"]);
  });

  it("a merge's duplicate claims go to a settled preferrer, then a settled member, then fewer claims, then the lowest index", () => {
    const st = (settled: boolean, held: number[], prefers: number[] = []): MemberState => ({
      mature: true,
      settled,
      held,
      prefers,
    });
    // group 0: 0 and 1 both hold it, 1 prefers it (settled) -> 1
    expect(allocate(2, [st(true, [0, 1]), st(true, [0], [0])], 0).table.owner[0]).toBe(1);
    // an unsettled claimant loses to a settled one whatever the claim counts
    expect(allocate(3, [st(false, [0]), st(true, [0, 1, 2])], 0).table.owner[0]).toBe(1);
    // both settled: fewer claims wins (the side that claimed everything alone gives way)
    expect(allocate(3, [st(true, [0, 1, 2]), st(true, [0])], 0).table.owner[0]).toBe(1);
    // full tie: the lowest index
    expect(allocate(2, [st(true, [0]), st(true, [0])], 0).table.owner[0]).toBe(0);
  });
});

describe("Wackamole quirks not reproduced (docs/vip.md §7)", () => {
  it("loads come from the agreed table, not from local bookkeeping: members with different histories agree (quirk 9)", () => {
    // Two members merging from different previous views: both compute from the same states only.
    fc.assert(
      fc.property(anyInput, ({ groups, states }) => {
        const atA = allocate(groups, states, 3).table;
        const atB = allocate(groups, structuredClone(states), 3).table;
        expect(loads(atA)).toEqual(loads(atB));
      }),
      { numRuns: 200 },
    );
  });

  it("a balancing round reports only the moves it made: none when the most-loaded member holds only preferred groups (quirk 7)", () => {
    const states: MemberState[] = [
      { mature: true, settled: true, held: [0, 1, 2], prefers: [0, 1, 2] },
      { mature: true, settled: true, held: [], prefers: [] },
    ];
    const { moves, table } = allocate(3, states, 5);
    expect(moves).toEqual([]);
    expect(table.owner).toEqual([0, 0, 0]);
  });
});
