/**
 * Failure detection: the peer table (one entry per peer id, the current incarnation and the last
 * few dead ones), who is alive (`now < lastHeard + failureTimeoutMs`), the reachable set that the
 * view change proposes, heartbeat targets, and stall compensation (time this member itself could
 * not run is not counted against its peers). docs/membership.md §2, §3 "Joins, leaves, restarts,
 * pauses" and "Failure-detection arithmetic".
 */
import type { NodeId } from "@spines-ts/primitives";
import { type MbHeartbeat, MbHeartbeatFlag, type MbMemberRef } from "@spines-ts/wire";
import type { CoreContext } from "./context.ts";
import { NO_VIEW, sameViewId, type ViewId } from "./types.ts";

export interface Peer {
  inc: number;
  lastHeard: number;
  /** When this peer (incarnation) last became alive: first heard, or heard again after expiring. */
  aliveSince: number;
  /** Packets from these earlier incarnations are ignored (bounded). */
  deadIncs: number[];
  left: boolean;
  hbSeq: number;
  /** Latest heartbeat summary (only from a newer hbSeq). */
  view: ViewId;
  flags: number;
  maxCounter: number;
  delivered: number;
  seqHigh: number;
}

const MAX_DEAD_INCS = 4;

export class FailureDetector {
  readonly #c: CoreContext;
  readonly peers = new Map<NodeId, Peer>();
  readonly configuredPeers: NodeId[];
  /** A new peer (or incarnation) was heard: answer its heartbeat at once. */
  greet: NodeId | undefined = undefined;

  constructor(c: CoreContext, configuredPeers: NodeId[]) {
    this.#c = c;
    this.configuredPeers = configuredPeers;
  }

  /** Adds a peer to heartbeat (for example one found by discovery). False when the table is full. */
  addPeer(id: NodeId): boolean {
    if (id === this.#c.id || this.configuredPeers.includes(id)) return true;
    if (this.configuredPeers.length >= this.#c.limits.maxPeers) return false;
    this.configuredPeers.push(id);
    return true;
  }

  /**
   * A gap in our own activity (GC pause, SIGSTOP, a busy event loop, the whole machine overloaded)
   * is time we could not hear anyone: it must not count against the peers, so their silence clocks
   * are shifted by it. A stall long enough to let a live peer expire (longer than
   * `failureTimeoutMs − heartbeatIntervalMs`) says more: under load the others were likely stalled
   * too and resume a little later than us, so every peer then gets a full `failureTimeoutMs` of our
   * running time, from now, to be heard again. Only peers alive when the stall began are touched (a
   * stall resurrects no one), and short hiccups only shift, so a busy machine does not postpone
   * crash detection again and again.
   */
  noteActivity(now: number): void {
    const c = this.#c;
    const gap = now - c.lastActivity;
    const t = c.timing;
    const expected = Math.min(t.heartbeatIntervalMs, t.retransmitMs) + 5;
    if (gap > expected + t.heartbeatIntervalMs) {
      c.stats.stalls++;
      const long = gap > t.failureTimeoutMs - t.heartbeatIntervalMs;
      const shift = gap - expected;
      for (const p of this.peers.values()) {
        if (p.lastHeard + t.failureTimeoutMs <= c.lastActivity) continue; // expired before the stall
        p.lastHeard = long ? now : Math.min(now, p.lastHeard + shift);
      }
    }
    c.lastActivity = now;
  }

  /** The earliest time a live peer expires (after `after`), or `limit` if none does before it. */
  nextExpiry(after: number, limit: number): number {
    let t = limit;
    const timeout = this.#c.timing.failureTimeoutMs;
    for (const p of this.peers.values()) {
      if (!p.left) {
        const d = p.lastHeard + timeout;
        if (d > after && d < t) t = d;
      }
    }
    return t;
  }

  /**
   * Notes a packet from `id`/`inc`. Returns the peer, or undefined when the packet must be ignored
   * (unknown sender and `create` false, a dead incarnation, a peer that left, a full table).
   */
  touchPeer(id: NodeId, inc: number, now: number, create: boolean): Peer | undefined {
    const c = this.#c;
    let p = this.peers.get(id);
    if (p === undefined) {
      if (!create) return undefined;
      if (this.peers.size >= c.limits.maxPeers) {
        c.rl.debug(now, "peers-full", { id }, "peer table full");
        return undefined;
      }
      p = {
        inc,
        lastHeard: now,
        aliveSince: now,
        deadIncs: [],
        left: false,
        hbSeq: -1,
        view: NO_VIEW,
        flags: 0,
        maxCounter: 0,
        delivered: 0,
        seqHigh: 0,
      };
      this.peers.set(id, p);
      c.dirty = true;
      this.greet = id;
      return p;
    }
    if (p.inc !== inc) {
      if (p.deadIncs.includes(inc) || !create) return undefined; // late packet from a dead incarnation
      p.deadIncs.push(p.inc);
      if (p.deadIncs.length > MAX_DEAD_INCS) p.deadIncs.shift();
      p.inc = inc;
      p.left = false;
      p.hbSeq = -1;
      p.view = NO_VIEW;
      p.flags = 0;
      p.delivered = 0;
      p.seqHigh = 0;
      c.dirty = true;
      this.greet = id;
    }
    if (p.left) return undefined;
    const wasAlive = this.isAlive(p, now);
    p.lastHeard = now;
    if (!wasAlive) {
      // back after a partition or a pause: answer its heartbeat at once too, so that the coordinator
      // of a merge hears every member of the other side within a round trip of its own heartbeat
      c.dirty = true;
      p.aliveSince = now;
      this.greet = id;
    }
    return p;
  }

  /**
   * The members of a view just installed were heard by its coordinator moments ago: a member this
   * one has not heard from yet (a joiner whose first heartbeat or greeting was lost) gets a peer
   * entry as if heard now, so this member does not propose to drop it at once. A member that really
   * is gone is then detected by the timeout as usual.
   */
  vouch(members: readonly MbMemberRef[], now: number): void {
    const c = this.#c;
    const greet = this.greet;
    for (const m of members) {
      if (m.id === c.id) continue;
      const p = this.peers.get(m.id);
      if (
        p === undefined ? this.peers.size >= c.limits.maxPeers : p.inc === m.inc || p.deadIncs.includes(m.inc)
      )
        continue;
      this.touchPeer(m.id, m.inc, now, true);
    }
    this.greet = greet;
  }

  /** Records a heartbeat's summary; false when it is older than one already seen (reordered). */
  onHeartbeat(peer: Peer, hb: MbHeartbeat): boolean {
    if (hb.hbSeq <= peer.hbSeq) return false;
    peer.hbSeq = hb.hbSeq;
    const changed = !sameViewId(peer.view, hb.view) || peer.flags !== hb.flags;
    peer.view = hb.view;
    peer.flags = hb.flags;
    peer.maxCounter = hb.maxCounter;
    peer.delivered = hb.delivered;
    peer.seqHigh = hb.seqHigh;
    if (changed) this.#c.dirty = true;
    return true;
  }

  /** A live peer has a view: the group exists, so a joiner that is its lowest id proposes at once. */
  groupExists(now: number): boolean {
    for (const p of this.peers.values())
      if (this.isAlive(p, now) && (p.flags & MbHeartbeatFlag.InView) !== 0) return true;
    return false;
  }

  isAlive(p: Peer, now: number): boolean {
    // the same expression as the deadline in nextExpiry(), so a wake-up at it sees the expiry
    return !p.left && now < p.lastHeard + this.#c.timing.failureTimeoutMs;
  }

  heartbeatTargets(): NodeId[] {
    const out = new Set<NodeId>(this.configuredPeers);
    for (const [id, p] of this.peers) if (!p.left) out.add(id);
    return [...out];
  }

  /** The members this node would put in a view now: itself and every live peer, lowest ids first. */
  reachable(now: number): MbMemberRef[] {
    const c = this.#c;
    const out: MbMemberRef[] = [{ id: c.id, inc: c.incarnation }];
    for (const [id, p] of this.peers) if (this.isAlive(p, now)) out.push({ id, inc: p.inc });
    out.sort((a, b) => a.id - b.id);
    if (out.length > c.limits.maxMembers) {
      const mine = out.findIndex((m) => m.id === c.id);
      out.length = c.limits.maxMembers;
      if (mine >= c.limits.maxMembers) out[out.length - 1] = { id: c.id, inc: c.incarnation };
    }
    return out;
  }

  /** Treats a peer as failed until it is heard from again. */
  suspect(id: NodeId): void {
    const p = this.peers.get(id);
    if (p) p.lastHeard = Number.NEGATIVE_INFINITY;
  }
}
