/**
 * The allocation: a pure, deterministic function from (agreed view, every member's reported state)
 * to an owner for every VIP group. Every member of a view runs it on the same inputs (delivered in
 * the same total order), so every member computes the same table (docs/vip.md §3).
 *
 * Members are identified by their index in the view's member list (ascending node ids, identical at
 * every member). `NO_OWNER` (-1) marks a group nobody holds.
 */

export const NO_OWNER = -1;

/** What one member reported in its state message for the view (plus what was delivered since). */
export interface MemberState {
  /** May hold VIPs at all (past the cold-start hold-off, or contagion). */
  readonly mature: boolean;
  /** Past its flap hold-off: may receive groups by balancing and preference, wins conflicts. */
  readonly settled: boolean;
  /** Groups (table indices) the member holds now. */
  readonly held: readonly number[];
  /** Groups the member prefers to hold. */
  readonly prefers: readonly number[];
}

/** Why a group changed owner. */
export type MoveCause = "conflict" | "orphan" | "preference" | "balance";

export interface Move {
  readonly group: number;
  /** Member index, or NO_OWNER. */
  readonly from: number;
  readonly to: number;
  readonly cause: MoveCause;
}

/** The agreed table during a view: owners plus the per-member flags that steer the rules. */
export interface Table {
  readonly groups: number;
  /** Whether any member of the view is mature (then all are: contagion). */
  readonly mature: boolean;
  readonly members: readonly { readonly settled: boolean; readonly prefers: ReadonlySet<number> }[];
  /** owner[g] = member index or NO_OWNER. */
  readonly owner: readonly number[];
}

export interface Allocation {
  readonly table: Table;
  /** Every change from what the members held, in the order it was decided. */
  readonly moves: readonly Move[];
}

/**
 * One exchange: resolve duplicate claims, then `settle`. `maxMoves` bounds the balancing done at
 * once (0: balance only on VipBalance rounds; `Infinity`: balance fully, "immediate" mode).
 */
export function allocate(groups: number, states: readonly MemberState[], maxMoves = 0): Allocation {
  const mature = states.some((s) => s.mature);
  const members = states.map((s) => ({
    settled: s.settled,
    prefers: new Set(s.prefers.filter((g) => Number.isInteger(g) && g >= 0 && g < groups)),
  }));
  const owner: number[] = new Array(groups).fill(NO_OWNER);
  const moves: Move[] = [];
  if (!mature) {
    // No member may hold anything; an immature member never does, so there is nothing to release
    // unless a state is inconsistent (then its claims are dropped).
    states.forEach((s, i) => {
      for (const g of s.held)
        if (g >= 0 && g < groups) moves.push({ group: g, from: i, to: NO_OWNER, cause: "conflict" });
    });
    return { table: { groups, mature, members, owner }, moves };
  }
  // Claims: every group claimed by one member stays with it; duplicates (possible only after a
  // merge) go to the best claimant: a settled preferrer, then a settled member, then the member
  // with fewer claims, then the lowest index.
  const claims = states.map(
    (s) => new Set(s.held.filter((g) => Number.isInteger(g) && g >= 0 && g < groups)),
  );
  const rank = (i: number, g: number): [number, number, number, number] => {
    const m = members[i] as { settled: boolean; prefers: Set<number> };
    return [m.settled && m.prefers.has(g) ? 0 : 1, m.settled ? 0 : 1, (claims[i] as Set<number>).size, i];
  };
  const better = (a: number, b: number, g: number): boolean => {
    const x = rank(a, g);
    const y = rank(b, g);
    for (let k = 0; k < 4; k++) if (x[k] !== y[k]) return (x[k] as number) < (y[k] as number);
    return false;
  };
  const losers: Move[] = [];
  for (let i = 0; i < claims.length; i++) {
    for (const g of claims[i] as Set<number>) {
      const cur = owner[g] as number;
      if (cur === NO_OWNER) owner[g] = i;
      else if (better(i, cur, g)) {
        losers.push({ group: g, from: cur, to: i, cause: "conflict" });
        owner[g] = i;
      } else losers.push({ group: g, from: i, to: cur, cause: "conflict" });
    }
  }
  moves.push(...losers);
  const settled = settle({ groups, mature, members, owner }, maxMoves);
  moves.push(...settled.moves);
  return { table: settled.table, moves };
}

/**
 * Applies the standing rules to a table: settled preferrers get their preferred groups, unowned
 * groups go to the least-loaded eligible member, then up to `maxMoves` balancing moves. With nothing
 * changed since the last call (and `maxMoves` 0 or the table balanced) nothing moves.
 */
export function settle(t: Table, maxMoves = 0): Allocation {
  const owner = [...t.owner];
  const moves: Move[] = [];
  if (!t.mature) return { table: { ...t, owner }, moves };
  const n = t.members.length;
  const pinned = (g: number): boolean => {
    const o = owner[g] as number;
    return o !== NO_OWNER && (t.members[o]?.prefers.has(g) ?? false) && (t.members[o]?.settled ?? false);
  };
  // 1. Preferences of settled members. Several preferrers: a holding preferrer keeps it, else the
  //    first in view order takes it.
  for (let g = 0; g < t.groups; g++) {
    let first = NO_OWNER;
    let holderPrefers = false;
    for (let i = 0; i < n; i++) {
      const m = t.members[i] as Table["members"][number];
      if (!m.settled || !m.prefers.has(g)) continue;
      if (first === NO_OWNER) first = i;
      if (owner[g] === i) holderPrefers = true;
    }
    if (first !== NO_OWNER && !holderPrefers) {
      moves.push({ group: g, from: owner[g] as number, to: first, cause: "preference" });
      owner[g] = first;
    }
  }
  // Loads count the groups a member holds that are not pinned to it by its own preference.
  const load = new Array<number>(n).fill(0);
  for (let g = 0; g < t.groups; g++)
    if (owner[g] !== NO_OWNER && !pinned(g)) bump(load, owner[g] as number, 1);
  const anySettled = t.members.some((m) => m.settled);
  const eligible = (i: number): boolean => !anySettled || (t.members[i]?.settled ?? false);
  // 2. Orphans, in table order, to the least-loaded eligible member (ties: lowest index).
  for (let g = 0; g < t.groups; g++) {
    if (owner[g] !== NO_OWNER) continue;
    let best = NO_OWNER;
    for (let i = 0; i < n; i++)
      if (eligible(i) && (best === NO_OWNER || (load[i] as number) < (load[best] as number))) best = i;
    if (best === NO_OWNER) break;
    owner[g] = best;
    bump(load, best, 1);
    moves.push({ group: g, from: NO_OWNER, to: best, cause: "orphan" });
  }
  // 3. Balancing: while the most-loaded member (any) exceeds the least-loaded settled member by
  //    more than one, move the donor's lowest unpinned group. Preferred (pinned) groups never move.
  for (let k = 0; k < maxMoves && anySettled; k++) {
    let to = NO_OWNER;
    for (let i = 0; i < n; i++)
      if (t.members[i]?.settled && (to === NO_OWNER || (load[i] as number) < (load[to] as number))) to = i;
    let from = NO_OWNER;
    for (let i = n - 1; i >= 0; i--)
      if (from === NO_OWNER || (load[i] as number) > (load[from] as number)) from = i;
    if (to === NO_OWNER || from === NO_OWNER || (load[from] as number) - (load[to] as number) <= 1) break;
    let g = 0;
    while (g < t.groups && !(owner[g] === from && !pinned(g))) g++;
    if (g === t.groups) break; // cannot happen: load[from] >= 2 counts unpinned groups
    owner[g] = to;
    bump(load, from, -1);
    bump(load, to, 1);
    moves.push({ group: g, from, to, cause: "balance" });
  }
  return { table: { ...t, owner }, moves };
}

/** Loads as balancing counts them: groups held and not pinned by the holder's own preference. */
export function loads(t: Table): number[] {
  const load = new Array<number>(t.members.length).fill(0);
  for (let g = 0; g < t.groups; g++) {
    const o = t.owner[g] as number;
    if (o === NO_OWNER) continue;
    const m = t.members[o];
    if (m?.settled && m.prefers.has(g)) continue;
    bump(load, o, 1);
  }
  return load;
}

function bump(a: number[], i: number, d: number): void {
  a[i] = (a[i] ?? 0) + d;
}
