import type { NodeId } from "@spines-ts/primitives";
import type { MembershipEvent, View } from "./types.ts";

interface MemberLog {
  readonly node: NodeId;
  readonly inc: number;
  view: View | null;
  /** Deliveries in the current view. */
  count: number;
  /** Last delivered senderSeq per sender incarnation ("id/inc"). */
  readonly fifo: Map<string, number>;
  /** Last own senderSeq delivered back to this member. */
  ownLast: number;
  inTransition: boolean;
}

/**
 * A global observer of every member's events that checks the membership guarantees as they
 * happen (so a simulator invariant can report the first violation right after the event):
 *
 * - view agreement: one view id, one member list (with incarnations), and the installer is in it;
 *   a member's view ids only grow;
 * - total order: the i-th message a member delivers in a view is the same message everywhere;
 * - FIFO: each member delivers a sender incarnation's messages in increasing senderSeq order;
 * - self-delivery: a member delivers its own messages back to itself in order; it may skip one
 *   only if that one was delivered (to others) in a view it had been cut off from;
 * - virtual synchrony: members that install the same two consecutive views delivered the same
 *   number (hence, by total order, the same set) of messages in the first.
 */
export class MembershipObserver {
  /** The first violation seen, if any. */
  violation: string | undefined;
  readonly #views = new Map<string, string>();
  /** view key -> message ids in order ("sender/inc/senderSeq"). */
  readonly #order = new Map<string, string[]>();
  /** "V->W" -> delivered count in V. */
  readonly #pairs = new Map<string, { count: number; who: string }>();
  readonly #members = new Map<string, MemberLog>();
  readonly #deliveredIds = new Set<string>();
  /** Total events seen by kind. */
  readonly counts = { views: 0, messages: 0, transitional: 0 };
  readonly #maxOrderedViews: number;

  constructor(maxOrderedViews = 10_000) {
    this.#maxOrderedViews = maxOrderedViews;
  }

  #fail(msg: string): void {
    if (this.violation === undefined) this.violation = msg;
  }

  #log(node: NodeId, inc: number): MemberLog {
    const k = `${node}/${inc}`;
    let m = this.#members.get(k);
    if (m === undefined) {
      m = { node, inc, view: null, count: 0, fifo: new Map(), ownLast: 0, inTransition: false };
      this.#members.set(k, m);
    }
    return m;
  }

  /** Feed every event of every member here. */
  record(node: NodeId, inc: number, ev: MembershipEvent): void {
    const m = this.#log(node, inc);
    const who = `${node}/${inc}`;
    if (ev.type === "transitional") {
      this.counts.transitional++;
      m.inTransition = true;
      return;
    }
    if (ev.type === "view") {
      this.counts.views++;
      const v = ev.view;
      const desc = v.members.map((id, i) => `${id}/${v.incarnations[i]}`).join(",");
      const known = this.#views.get(v.key);
      if (known === undefined) this.#views.set(v.key, desc);
      else if (known !== desc) this.#fail(`view ${v.key}: ${who} installed [${desc}], others [${known}]`);
      if (v.members[v.myIndex] !== node || v.incarnations[v.myIndex] !== inc)
        this.#fail(`view ${v.key}: installer ${who} is not at its own index ${v.myIndex}`);
      for (let i = 1; i < v.members.length; i++)
        if ((v.members[i - 1] as number) >= (v.members[i] as number))
          this.#fail(`view ${v.key}: members not ascending`);
      if (m.view !== null) {
        const a = m.view.id;
        const b = v.id;
        const c = a.counter - b.counter || a.coord - b.coord || a.coordInc - b.coordInc;
        if (c >= 0) this.#fail(`${who}: view ${v.key} does not follow ${m.view.key}`);
        if (
          v.previous.counter !== a.counter ||
          v.previous.coord !== a.coord ||
          v.previous.coordInc !== a.coordInc
        )
          this.#fail(`${who}: view ${v.key} names previous ${JSON.stringify(v.previous)}, was ${m.view.key}`);
        const pair = `${m.view.key}->${v.key}`;
        const seen = this.#pairs.get(pair);
        if (seen === undefined) this.#pairs.set(pair, { count: m.count, who });
        else if (seen.count !== m.count)
          this.#fail(
            `virtual synchrony: ${pair}: ${who} delivered ${m.count} messages in ${m.view.key}, ${seen.who} delivered ${seen.count}`,
          );
        if (!m.inTransition) this.#fail(`${who}: view ${v.key} installed without a transitional signal`);
      }
      m.view = v;
      m.count = 0;
      m.inTransition = false;
      if (!this.#order.has(v.key)) {
        if (this.#order.size >= this.#maxOrderedViews) {
          const first = this.#order.keys().next().value;
          if (first !== undefined) this.#order.delete(first);
        }
        this.#order.set(v.key, []);
      }
      return;
    }
    if (ev.type === "message") {
      this.counts.messages++;
      const d = ev.message;
      const v = m.view;
      if (v === null) {
        this.#fail(`${who}: message before any view`);
        return;
      }
      if (
        d.view.counter !== v.id.counter ||
        d.view.coord !== v.id.coord ||
        d.view.coordInc !== v.id.coordInc
      ) {
        this.#fail(`${who}: message of view ${JSON.stringify(d.view)} delivered in ${v.key}`);
        return;
      }
      const si = v.members.indexOf(d.sender);
      if (si < 0) {
        this.#fail(`${who}: message from non-member ${d.sender} in ${v.key}`);
        return;
      }
      const sinc = v.incarnations[si] as number;
      m.count++;
      if (d.seq !== m.count) this.#fail(`${who}: delivered seq ${d.seq} as message #${m.count} of ${v.key}`);
      const id = `${d.sender}/${sinc}/${d.senderSeq}`;
      const order = this.#order.get(v.key);
      if (order !== undefined) {
        const at = m.count - 1;
        if (at < order.length) {
          if (order[at] !== id)
            this.#fail(`total order: ${v.key} #${m.count}: ${who} got ${id}, others ${order[at]}`);
        } else if (at === order.length) order.push(id);
      }
      const fk = `${d.sender}/${sinc}`;
      const last = m.fifo.get(fk) ?? 0;
      if (d.senderSeq <= last) this.#fail(`FIFO: ${who} delivered ${fk}#${d.senderSeq} after #${last}`);
      m.fifo.set(fk, d.senderSeq);
      this.#deliveredIds.add(id);
      if (d.sender === node && sinc === inc) {
        // own messages come back in order; one may be skipped only if it was delivered in a view
        // this member had been cut off from (then it is in the global delivered set)
        for (let s = m.ownLast + 1; s < d.senderSeq; s++)
          if (!this.#deliveredIds.has(`${node}/${inc}/${s}`))
            this.#fail(`self-delivery: ${who} got its own #${d.senderSeq} but #${s} was delivered nowhere`);
        m.ownLast = d.senderSeq;
      }
    }
  }

  /** How many own messages `node/inc` has had delivered back (for end-of-run self-delivery checks). */
  ownDelivered(node: NodeId, inc: number): number {
    return this.#members.get(`${node}/${inc}`)?.ownLast ?? 0;
  }

  /** The first of `node/inc`'s multicasts 1..sent that no member delivered, if any. */
  firstLost(node: NodeId, inc: number, sent: number): number | undefined {
    for (let s = 1; s <= sent; s++) if (!this.#deliveredIds.has(`${node}/${inc}/${s}`)) return s;
    return undefined;
  }
}
