/**
 * View change (docs/membership.md §3): when to change (the coordinator check), the coordinator's
 * two phases (propose and collect flush states; install with per-old-view targets, holders and
 * floors), and the member side (accept or reject a proposal, block, report, complete the old view
 * up to the install target, install).
 */
import type { NodeId } from "@spines-ts/primitives";
import {
  type MbFloor,
  type MbFlushState,
  MbHeartbeatFlag,
  type MbInstall,
  type MbInstallAck,
  type MbInstallEntry,
  type MbMemberRef,
  type MbPropose,
  type MbReject,
} from "@spines-ts/wire";
import { ascending, type CoreContext, MAX_NACK_BATCH } from "./context.ts";
import type { FailureDetector } from "./detector.ts";
import type { Installed, Ordering } from "./ordering.ts";
import { compareViewIds, NO_VIEW, sameViewId, type View, type ViewId, viewKey } from "./types.ts";

interface Accepted {
  readonly pid: ViewId;
  readonly members: readonly MbMemberRef[];
  readonly coord: NodeId;
  readonly at: number;
  install: { msg: MbInstall; entry: MbInstallEntry; nackAt: number } | null;
}

interface Proposal {
  readonly pid: ViewId;
  readonly members: readonly MbMemberRef[];
  readonly reports: Map<NodeId, MbFlushState>;
  phase: "flush" | "install";
  readonly startedAt: number;
  phaseAt: number;
  lastSendAt: number;
  install: MbInstall | null;
  readonly acks: Set<NodeId>;
}

export class ViewChange {
  readonly #c: CoreContext;
  readonly #fd: FailureDetector;
  readonly #ord: Ordering;
  /** The highest view counter seen anywhere (views, proposals, heartbeats, rejections). */
  maxCounter = 0;
  joinedAt = 0;
  #forceChange = false;
  /** The proposal this member accepted (it is blocked while this is set). */
  accepted: Accepted | null = null;
  #transitionalSent = false;
  /** The round this member coordinates, if any. */
  proposal: Proposal | null = null;
  /** A merge waits for the other side's members until then (see `#mergeSettled`). */
  wakeAt = Number.NEGATIVE_INFINITY;

  constructor(c: CoreContext, fd: FailureDetector, ord: Ordering) {
    this.#c = c;
    this.#fd = fd;
    this.#ord = ord;
  }

  noteCounter(counter: number): void {
    if (counter > this.maxCounter) this.maxCounter = counter;
  }

  /** Drops any round in progress (the member left). */
  clear(): void {
    this.accepted = null;
    this.proposal = null;
  }

  #joinGraceMs(): number {
    const t = this.#c.timing;
    return Math.min(2 * t.heartbeatIntervalMs, t.failureTimeoutMs);
  }

  /** Decides whether this member must start a view change (only the lowest reachable id does). */
  check(now: number): void {
    const c = this.#c;
    c.dirty = false;
    if (c.state !== "joined") return;
    const reach = this.#fd.reachable(now);
    const pr = this.proposal;
    if (pr !== null) {
      // a proposed member failed during the view change: restart at once (cascade)
      const dead = pr.members.some(
        (m) => m.id !== c.id && !reach.some((r) => r.id === m.id && r.inc === m.inc),
      );
      if (pr.phase === "flush" && dead) {
        this.#startProposal(now, reach);
        return;
      }
      if (pr.phase === "flush" && now - pr.phaseAt > c.timing.viewChangeTimeoutMs) {
        // members that never answered are treated as failed until heard from again
        for (const m of pr.members) if (m.id !== c.id && !pr.reports.has(m.id)) this.#fd.suspect(m.id);
        this.#startProposal(now, this.#fd.reachable(now));
        return;
      }
      if (pr.phase === "install") {
        const done = pr.acks.size >= pr.members.length;
        if (!done && now - pr.phaseAt <= c.timing.viewChangeTimeoutMs) return;
        this.proposal = null;
      } else {
        return;
      }
    }
    if (this.#coordinator(now, reach) !== c.id) return;
    // a joiner gives the group a moment to propose to it before it forms a view of its own
    // (a group that exists proposes to a joiner at once: its coordinator has a view)
    if (this.#ord.view === null && now - this.joinedAt < this.#joinGraceMs() && !this.#fd.groupExists(now))
      return;
    const acc = this.accepted;
    if (acc !== null && acc.coord !== c.id) {
      const coordAlive = reach.some((r) => r.id === acc.coord);
      if (coordAlive && now - acc.at <= c.timing.viewChangeTimeoutMs) return; // let it finish
    }
    if (acc !== null && acc.coord === c.id && acc.install !== null) return; // syncing my own install
    if (!this.#mergeSettled(now, reach)) return;
    if (this.#needChange(now, reach)) this.#startProposal(now, reach);
  }

  /**
   * Who coordinates the next change, as this member sees it: the lowest reachable member that has
   * a view. A member without a view (a joiner: a new process or a restarted one) leads only when no
   * reachable member has a view, or when the group has not taken it in within `2·viewChangeTimeoutMs`
   * of its join (a liveness fallback for one-way links). So a returning member, even one with the
   * lowest id, is merged into the established view by that view's coordinator; it never proposes a
   * view of the few peers it has heard so far, which would split the established view.
   */
  #coordinator(now: number, reach: readonly MbMemberRef[]): NodeId {
    const c = this.#c;
    const view = this.#ord.view;
    const joinerLeads = now - this.joinedAt >= 2 * c.timing.viewChangeTimeoutMs;
    for (const m of reach) {
      if (m.id === c.id) {
        if (view !== null || joinerLeads) return c.id;
        continue;
      }
      const p = this.#fd.peers.get(m.id);
      if (p === undefined) continue;
      // a member of our view has one too, even before its next heartbeat says so
      if ((p.flags & MbHeartbeatFlag.InView) !== 0) return m.id;
      const i = view?.index.get(m.id);
      if (i !== undefined && view?.members[i]?.inc === m.inc) return m.id;
    }
    return (reach[0] as MbMemberRef).id;
  }

  /**
   * A merge of established views (a healed partition, a member back from a long pause) waits until
   * `heartbeatIntervalMs + 2·retransmitMs` after the last member of another view became reachable:
   * our heartbeats reach every member of the other side within an interval and each answers at
   * once, so the proposal then holds the whole other view instead of the first few members heard,
   * which would split it. Joiners (no view) are proposed at once, as before.
   */
  #mergeSettled(now: number, reach: readonly MbMemberRef[]): boolean {
    const view = this.#ord.view;
    if (view === null) return true;
    const t = this.#c.timing;
    const settle = t.heartbeatIntervalMs + 2 * t.retransmitMs;
    let until = Number.NEGATIVE_INFINITY;
    for (const m of reach) {
      if (m.id === this.#c.id) continue;
      const i = view.index.get(m.id);
      if (i !== undefined && view.members[i]?.inc === m.inc) continue;
      const p = this.#fd.peers.get(m.id);
      if (p === undefined || (p.flags & MbHeartbeatFlag.InView) === 0 || sameViewId(p.view, view.id))
        continue;
      until = Math.max(until, p.aliveSince + settle);
    }
    if (until <= now) return true;
    this.wakeAt = until;
    return false;
  }

  #needChange(now: number, reach: readonly MbMemberRef[]): boolean {
    if (this.#forceChange) return true;
    const v = this.#ord.view;
    if (v === null) return true;
    if (this.accepted !== null) return true; // a stalled view change
    if (v.members.length !== reach.length) return true;
    for (let i = 0; i < reach.length; i++) {
      const a = reach[i] as MbMemberRef;
      const b = v.members[i] as MbMemberRef;
      if (a.id !== b.id || a.inc !== b.inc) return true;
    }
    // a member that moved on (or refused our install) while we stayed
    for (const m of v.members) {
      if (m.id === this.#c.id) continue;
      const p = this.#fd.peers.get(m.id);
      if (p === undefined || p.hbSeq < 0) continue;
      if (
        p.maxCounter >= v.id.counter &&
        !sameViewId(p.view, v.id) &&
        (p.flags & MbHeartbeatFlag.Flushing) === 0
      ) {
        if (now - p.lastHeard < this.#c.timing.failureTimeoutMs) return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- coordinator side

  #startProposal(now: number, members: MbMemberRef[]): void {
    const c = this.#c;
    this.#forceChange = false;
    if (this.#coordinator(now, members) !== c.id) {
      // a lower member with a view is reachable now: it coordinates
      this.proposal = null;
      return;
    }
    this.maxCounter =
      Math.max(this.maxCounter, this.#ord.view?.id.counter ?? 0, this.accepted?.pid.counter ?? 0) + 1;
    if (this.maxCounter > 0xffffffff) this.maxCounter = 0xffffffff; // not reachable in practice
    const pid: ViewId = { counter: this.maxCounter, coord: c.id, coordInc: c.incarnation };
    this.proposal = {
      pid,
      members,
      reports: new Map(),
      phase: "flush",
      startedAt: now,
      phaseAt: now,
      lastSendAt: now,
      install: null,
      acks: new Set(),
    };
    c.stats.proposalsStarted++;
    const msg: MbPropose = { _tag: "MbPropose", group: c.groupHash, pid, members };
    const bytes = c.encode(msg);
    for (const m of members) if (m.id !== c.id) c.transmits.push({ to: m.id, data: bytes });
    this.onPropose(c.id, msg, now);
  }

  onReject(msg: MbReject): void {
    this.noteCounter(msg.maxCounter);
    const pr = this.proposal;
    if (pr && sameViewId(pr.pid, msg.pid) && pr.phase === "flush") {
      this.proposal = null;
      this.#forceChange = true;
      this.#c.dirty = true;
    }
  }

  onFlushState(from: NodeId, msg: MbFlushState, now: number): void {
    const c = this.#c;
    const pr = this.proposal;
    if (pr === null || pr.phase !== "flush" || !sameViewId(pr.pid, msg.pid)) return;
    if (!pr.members.some((m) => m.id === from)) return;
    pr.reports.set(from, msg);
    if (pr.reports.size < pr.members.length) return;
    // everyone answered: per old view, the highest delivered prefix becomes everyone's target
    const best = new Map<string, { target: number; holder: NodeId }>();
    for (const [id, r] of pr.reports) {
      const k = viewKey(r.oldView);
      const b = best.get(k);
      if (b === undefined || r.delivered > b.target) best.set(k, { target: r.delivered, holder: id });
    }
    const floor = new Map<string, number>();
    for (const r of pr.reports.values()) {
      for (const f of r.floors) {
        const k = `${f.id}/${f.inc}`;
        if (f.senderSeq > (floor.get(k) ?? 0)) floor.set(k, f.senderSeq);
      }
    }
    const entries: MbInstallEntry[] = pr.members.map((m) => {
      const r = pr.reports.get(m.id) as MbFlushState;
      const b = best.get(viewKey(r.oldView)) as { target: number; holder: NodeId };
      const fl = floor.get(`${m.id}/${m.inc}`) ?? 0;
      return { id: m.id, inc: m.inc, oldView: r.oldView, target: b.target, holder: b.holder, floor: fl };
    });
    const install: MbInstall = { _tag: "MbInstall", pid: pr.pid, entries };
    pr.install = install;
    pr.phase = "install";
    pr.phaseAt = now;
    pr.lastSendAt = now;
    const bytes = c.encode(install);
    for (const m of pr.members) if (m.id !== c.id) c.transmits.push({ to: m.id, data: bytes });
    this.onInstall(c.id, install, now);
  }

  onInstallAck(from: NodeId, msg: MbInstallAck): void {
    const pr = this.proposal;
    if (pr === null || pr.phase !== "install" || !sameViewId(pr.pid, msg.pid)) return;
    if (msg.ok) {
      pr.acks.add(from);
    } else {
      this.#c.stats.installsRefused++;
      this.proposal = null;
      this.#forceChange = true;
      this.#c.dirty = true;
    }
  }

  // ---------------------------------------------------------------- member side

  onPropose(from: NodeId, msg: MbPropose, now: number): void {
    const c = this.#c;
    this.noteCounter(msg.pid.counter);
    if (msg.pid.coord !== from) return;
    if (!msg.members.some((m) => m.id === c.id && m.inc === c.incarnation)) return;
    if (msg.members.length > c.limits.maxMembers || !ascending(msg.members)) return;
    if (!msg.members.some((m) => m.id === from)) return; // the coordinator is a member
    const reject = (): void => {
      if (from !== c.id) c.send(from, { _tag: "MbReject", pid: msg.pid, maxCounter: this.maxCounter });
    };
    const view = this.#ord.view;
    if (view && compareViewIds(msg.pid, view.id) <= 0) {
      reject();
      return;
    }
    const acc = this.accepted;
    if (acc !== null) {
      const cmp = compareViewIds(msg.pid, acc.pid);
      if (cmp < 0) {
        reject();
        return;
      }
      if (cmp === 0) {
        if (acc.install === null) this.#sendFlushState(from, msg.pid, acc.members);
        return;
      }
    }
    // accept: block, signal, report
    if (this.proposal && compareViewIds(this.proposal.pid, msg.pid) < 0) this.proposal = null;
    if (!this.#transitionalSent) {
      this.#transitionalSent = true;
      c.events.push({ type: "transitional", view: view ? view.id : NO_VIEW });
    }
    this.accepted = { pid: msg.pid, members: msg.members, coord: from, at: now, install: null };
    this.#sendFlushState(from, msg.pid, msg.members);
  }

  #sendFlushState(to: NodeId, pid: ViewId, members: readonly MbMemberRef[]): void {
    const c = this.#c;
    const floors: MbFloor[] = [];
    for (const m of members) {
      const f = this.#ord.floors.get(`${m.id}/${m.inc}`);
      if (f !== undefined) floors.push({ id: m.id, inc: m.inc, senderSeq: f });
    }
    const view = this.#ord.view;
    const fs: MbFlushState = {
      _tag: "MbFlushState",
      pid,
      oldView: view ? view.id : NO_VIEW,
      delivered: this.#ord.delivered,
      floors,
    };
    if (to === c.id) this.onFlushState(c.id, fs, c.lastActivity);
    else c.send(to, fs);
  }

  onInstall(from: NodeId, msg: MbInstall, now: number): void {
    const c = this.#c;
    const acc = this.accepted;
    const view = this.#ord.view;
    if (acc === null || !sameViewId(acc.pid, msg.pid) || from !== msg.pid.coord) {
      if (from === c.id || from !== msg.pid.coord) return;
      if (view && sameViewId(view.id, msg.pid)) {
        c.send(from, { _tag: "MbInstallAck", pid: msg.pid, ok: true }); // our ack was lost
      } else if (msg.entries.some((e) => e.id === c.id && e.inc === c.incarnation)) {
        // we moved on to a newer proposal (or never got this one's): tell the coordinator now
        // rather than let it wait out its install phase
        c.send(from, { _tag: "MbInstallAck", pid: msg.pid, ok: false });
      }
      return;
    }
    if (acc.install !== null) return; // duplicate
    if (
      msg.entries.length > c.limits.maxMembers ||
      !ascending(msg.entries) ||
      !msg.entries.some((e) => e.id === from)
    )
      return;
    const entry = msg.entries.find((e) => e.id === c.id && e.inc === c.incarnation);
    if (entry === undefined) return;
    const mine = view ? view.id : NO_VIEW;
    if (!sameViewId(entry.oldView, mine) || this.#ord.delivered > entry.target) {
      // our state moved since we reported it: refuse; the coordinator starts another round
      c.stats.installsRefused++;
      this.accepted = null;
      if (from !== c.id) c.send(from, { _tag: "MbInstallAck", pid: msg.pid, ok: false });
      else {
        this.proposal = null;
        this.#forceChange = true;
        c.dirty = true;
      }
      this.#ord.sendData(now);
      return;
    }
    acc.install = { msg, entry, nackAt: now };
    this.trySync(now);
  }

  /** Completes the old view up to the install target (asking the holder for gaps), then installs. */
  trySync(now: number): void {
    const acc = this.accepted;
    if (acc === null || acc.install === null) return;
    const { entry } = acc.install;
    const ord = this.#ord;
    ord.deliverUpTo(entry.target);
    if (ord.delivered < entry.target) {
      if (now >= acc.install.nackAt && ord.view) {
        acc.install.nackAt = now + this.#c.timing.retransmitMs;
        const to = Math.min(entry.target, ord.delivered + MAX_NACK_BATCH);
        this.#c.send(entry.holder, { _tag: "MbNack", view: ord.view.id, from: ord.delivered + 1, to });
      }
      return;
    }
    this.#installView(acc.install.msg, entry, now);
  }

  #installView(msg: MbInstall, entry: MbInstallEntry, now: number): void {
    const c = this.#c;
    const old = this.#ord.view;
    const members: MbMemberRef[] = msg.entries.map((e) => ({ id: e.id, inc: e.inc }));
    const index = new Map<NodeId, number>();
    for (const [i, m] of members.entries()) index.set(m.id, i);
    const myKey = viewKey(entry.oldView);
    const transitional =
      entry.oldView.counter === 0
        ? [c.id]
        : msg.entries.filter((e) => viewKey(e.oldView) === myKey).map((e) => e.id);
    const key = viewKey(msg.pid);
    const pub: View = {
      id: msg.pid,
      key,
      members: members.map((m) => m.id),
      incarnations: members.map((m) => m.inc),
      myIndex: index.get(c.id) as number,
      transitional,
      previous: old ? old.id : NO_VIEW,
    };
    const installed: Installed = {
      id: msg.pid,
      key,
      members,
      index,
      sequencer: (members[0] as MbMemberRef).id,
      pub,
    };
    this.#ord.startView(installed, new Map(msg.entries.map((e) => [e.id, e.floor])));
    this.#fd.vouch(members, now);
    this.accepted = null;
    this.#transitionalSent = false;
    this.#forceChange = false;
    c.stats.viewsInstalled++;
    c.events.push({ type: "view", view: pub });
    const coord = msg.pid.coord;
    if (coord !== c.id) c.send(coord, { _tag: "MbInstallAck", pid: msg.pid, ok: true });
    else if (this.proposal && sameViewId(this.proposal.pid, msg.pid)) this.proposal.acks.add(c.id);
    // own messages that members of this view already delivered elsewhere are done
    this.#ord.afterInstall(entry.floor);
    c.dirty = true;
    this.#ord.sendData(now);
  }

  /** Work the view change still has to finish (keeps the retransmission timer running). */
  busy(): boolean {
    return this.proposal !== null || this.accepted !== null;
  }

  /** Resends the proposal or install to members that have not answered; unblocks a stuck round. */
  onTimer(now: number): void {
    const c = this.#c;
    const rto = c.timing.retransmitMs;
    const pr = this.proposal;
    if (pr !== null && now - pr.lastSendAt >= rto) {
      pr.lastSendAt = now;
      if (pr.phase === "flush") {
        const bytes = c.encode({ _tag: "MbPropose", group: c.groupHash, pid: pr.pid, members: pr.members });
        for (const m of pr.members)
          if (m.id !== c.id && !pr.reports.has(m.id)) c.transmits.push({ to: m.id, data: bytes });
      } else if (pr.install) {
        const bytes = c.encode(pr.install);
        for (const m of pr.members)
          if (m.id !== c.id && !pr.acks.has(m.id)) c.transmits.push({ to: m.id, data: bytes });
      }
    }
    const acc = this.accepted;
    if (acc !== null) {
      if (acc.install !== null) this.trySync(now);
      if (this.accepted === acc && now - acc.at > 2 * c.timing.viewChangeTimeoutMs) {
        // the coordinator (or the holder we sync from) vanished: unblock; a new round will follow
        this.accepted = null;
        c.dirty = true;
      }
    }
  }
}
