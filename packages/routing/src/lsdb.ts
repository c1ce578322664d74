import { RouteItemKind as Kind, ROUTE_COST_DOWN, type RouteItem, type RouteItemKind } from "@spines-ts/wire";

/**
 * Orders two versions (incarnation, seq): -1, 0 or 1. Incarnations compare as unsigned integers;
 * within one incarnation, sequence numbers compare in serial-number arithmetic (RFC 1982): `a` is
 * newer when it is less than 2^31 ahead of `b`, modulo 2^32. So no sequence number is a maximum
 * that freezes an item: the origin can always issue a newer one (docs/routing.md §2).
 */
export function compareVersion(aInc: number, aSeq: number, bInc: number, bSeq: number): number {
  if (aInc !== bInc) return aInc < bInc ? -1 : 1;
  if (aSeq !== bSeq) return seqAhead(aSeq, bSeq) < 0x80000000 ? 1 : -1;
  return 0;
}

/** How far `a` is ahead of `b` modulo 2^32 (0..2^32-1). */
export function seqAhead(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** A stable string key for an item within the database: kind, origin and key. */
export function itemKey(kind: RouteItemKind, origin: number, key: number): string {
  return `${kind}:${origin}:${key}`;
}

/** A 32-bit hash of one item (with its version and value), for the order-free database digest. */
export function itemHash(it: RouteItem): number {
  let h = 0x811c9dc5 ^ it.kind;
  for (const x of [it.origin, it.key, it.incarnation, it.seq, it.value]) {
    h = Math.imul(h ^ (x & 0xffff), 0x01000193);
    h = Math.imul(h ^ (x >>> 16), 0x01000193);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** What an item means for routing: an edge's cost (DOWN when withdrawn), a group flag. */
function effective(it: RouteItem): number {
  return it.value;
}

/** What a missing item means: no edge, no membership. */
function absent(kind: RouteItemKind): number {
  return kind === Kind.Edge ? ROUTE_COST_DOWN : 0;
}

/** Everything the database holds about one origin. */
export interface OriginRecord {
  readonly id: number;
  /** Directed edges origin -> key; value = cost or ROUTE_COST_DOWN (a tombstone). */
  readonly edges: Map<number, RouteItem>;
  /** Group flags: value 1 = member, 0 = left (a tombstone). */
  readonly groups: Map<number, RouteItem>;
  /** Local time since which the origin has been unreachable from this node, if it is. */
  unreachableSince: number | undefined;
  /** The origin's newest incarnation held, and the newest sequence number under it. */
  incarnation: number;
  maxSeq: number;
}

export interface LsdbLimits {
  readonly maxOrigins: number;
  readonly maxEdgesPerOrigin: number;
  readonly maxGroupsPerOrigin: number;
}

export type InstallResult = "installed" | "full";

/**
 * The link-state database: one item per directed edge and per (origin, group), each with the
 * origin's version. Bounded by origins x items per origin. Keeps an order-free digest (XOR of item
 * hashes) so that agreement between nodes is cheap to check.
 */
export class LinkStateDb {
  readonly limits: LsdbLimits;
  readonly #origins = new Map<number, OriginRecord>();
  #digest = 0;
  #items = 0;
  /** Bumped on every change to an edge (routes must be recomputed). */
  edgeGeneration = 0;
  /** Bumped on every change to a group flag. */
  groupGeneration = 0;

  constructor(limits: LsdbLimits) {
    this.limits = limits;
  }

  get digest(): number {
    return this.#digest >>> 0;
  }

  get itemCount(): number {
    return this.#items;
  }

  get originCount(): number {
    return this.#origins.size;
  }

  origins(): IterableIterator<OriginRecord> {
    return this.#origins.values();
  }

  origin(id: number): OriginRecord | undefined {
    return this.#origins.get(id);
  }

  get(kind: RouteItemKind, origin: number, key: number): RouteItem | undefined {
    const o = this.#origins.get(origin);
    if (o === undefined) return undefined;
    return (kind === Kind.Edge ? o.edges : o.groups).get(key);
  }

  /** Inserts or replaces an item (the caller has checked it is newer). */
  install(it: RouteItem, now: number): InstallResult {
    let o = this.#origins.get(it.origin);
    if (o === undefined) {
      if (this.#origins.size >= this.limits.maxOrigins) return "full";
      o = {
        id: it.origin,
        edges: new Map(),
        groups: new Map(),
        unreachableSince: now,
        incarnation: it.incarnation,
        maxSeq: it.seq,
      };
      this.#origins.set(it.origin, o);
    }
    const table = it.kind === Kind.Edge ? o.edges : o.groups;
    const cap = it.kind === Kind.Edge ? this.limits.maxEdgesPerOrigin : this.limits.maxGroupsPerOrigin;
    const old = table.get(it.key);
    if (old === undefined && table.size >= cap) {
      // make room by dropping one tombstone (the origin re-issues it if anyone resurrects it)
      const tomb = it.kind === Kind.Edge ? ROUTE_COST_DOWN : 0;
      let victim: RouteItem | undefined;
      for (const x of table.values()) {
        if (x.value === tomb) {
          victim = x;
          break;
        }
      }
      if (victim === undefined) {
        if (o.edges.size + o.groups.size === 0) this.#origins.delete(it.origin);
        return "full";
      }
      this.#remove(table, victim);
    }
    if (old !== undefined) {
      table.delete(it.key);
      this.#digest ^= itemHash(old);
      this.#items--;
    }
    table.set(it.key, it);
    this.#digest ^= itemHash(it);
    this.#items++;
    if (compareVersion(it.incarnation, it.seq, o.incarnation, o.maxSeq) > 0) {
      o.incarnation = it.incarnation;
      o.maxSeq = it.seq;
    }
    // only a change of what the item means (not of its version) invalidates computed routes
    if (effective(it) !== (old === undefined ? absent(it.kind) : effective(old))) {
      if (it.kind === Kind.Edge) this.edgeGeneration++;
      else this.groupGeneration++;
    }
    return "installed";
  }

  #remove(table: Map<number, RouteItem>, it: RouteItem): void {
    table.delete(it.key);
    this.#digest ^= itemHash(it);
    this.#items--;
    if (effective(it) !== absent(it.kind)) {
      if (it.kind === Kind.Edge) this.edgeGeneration++;
      else this.groupGeneration++;
    }
  }

  /** Drops an origin and everything it advertised. */
  deleteOrigin(id: number): void {
    const o = this.#origins.get(id);
    if (o === undefined) return;
    for (const it of [...o.edges.values()]) this.#remove(o.edges, it);
    for (const it of [...o.groups.values()]) this.#remove(o.groups, it);
    this.#origins.delete(id);
  }

  /** Every item, origins ascending then edges then groups, keys ascending (a canonical dump). */
  dump(): RouteItem[] {
    const out: RouteItem[] = [];
    const ids = [...this.#origins.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const o = this.#origins.get(id) as OriginRecord;
      for (const k of [...o.edges.keys()].sort((a, b) => a - b)) out.push(o.edges.get(k) as RouteItem);
      for (const k of [...o.groups.keys()].sort((a, b) => a - b)) out.push(o.groups.get(k) as RouteItem);
    }
    return out;
  }

  *items(): IterableIterator<RouteItem> {
    for (const o of this.#origins.values()) {
      yield* o.edges.values();
      yield* o.groups.values();
    }
  }
}
