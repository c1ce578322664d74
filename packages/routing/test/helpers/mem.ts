/**
 * An in-memory network of Routers for unit tests: messages go through the real codec, arrive after
 * `delay` ms, and can be dropped by a filter; timers run from each router's `nextDeadline()`.
 */
import { decode, encode, type RoutingMessage } from "@spines-ts/wire";
import { Router, type RouterOptions, type RoutingEvent } from "../../src/index.ts";

interface InFlight {
  at: number;
  seq: number;
  from: number;
  to: number;
  bytes: Uint8Array;
}

export class MemNet {
  now = 0;
  delay = 1;
  readonly routers = new Map<number, Router>();
  readonly events = new Map<number, RoutingEvent[]>();
  readonly links = new Set<string>();
  drop: ((from: number, to: number, msg: RoutingMessage) => boolean) | undefined;
  sent = 0;
  #queue: InFlight[] = [];
  #seq = 0;
  readonly #defaults: Omit<RouterOptions, "id" | "incarnation">;

  constructor(defaults: Omit<RouterOptions, "id" | "incarnation"> = {}) {
    this.#defaults = { computeDelayMs: 0, ...defaults };
  }

  add(id: number, opts: Partial<RouterOptions> = {}): Router {
    const r = new Router({ ...this.#defaults, ...opts, id, incarnation: opts.incarnation ?? 1 });
    this.routers.set(id, r);
    this.events.set(id, []);
    return r;
  }

  r(id: number): Router {
    const r = this.routers.get(id);
    if (r === undefined) throw new Error(`no router ${id}`);
    return r;
  }

  #key(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`;
  }

  link(a: number, b: number, costs?: [number, number]): void {
    this.links.add(this.#key(a, b));
    this.r(a).linkUp(this.now, b, costs ? { rttMs: costs[0], loss: 0 } : undefined);
    this.r(b).linkUp(this.now, a, costs ? { rttMs: costs[1], loss: 0 } : undefined);
    this.pump();
  }

  unlink(a: number, b: number): void {
    this.links.delete(this.#key(a, b));
    this.routers.get(a)?.linkDown(this.now, b);
    this.routers.get(b)?.linkDown(this.now, a);
    this.pump();
  }

  /** Removes a node as if it crashed: its neighbours see the links go down. */
  crash(id: number): void {
    this.routers.delete(id);
    for (const k of [...this.links]) {
      const [a, b] = k.split("-").map(Number) as [number, number];
      if (a === id || b === id) this.unlink(a, b);
    }
  }

  pump(): void {
    for (const [id, r] of this.routers) {
      for (const o of r.takeTransmits()) {
        this.sent++;
        if (!this.links.has(this.#key(id, o.to))) continue;
        if (this.drop?.(id, o.to, o.msg)) continue;
        const bytes = encode({ sender: id, incarnation: 1 }, o.msg);
        this.#queue.push({ at: this.now + this.delay, seq: this.#seq++, from: id, to: o.to, bytes });
      }
      for (const e of r.takeEvents()) this.events.get(id)?.push(e);
    }
  }

  /** Runs messages and timers until `until` (absolute; default 10 s on, less than the 60 s origin ageing). */
  run(until = this.now + 10_000): void {
    for (;;) {
      this.pump();
      let next: InFlight | undefined;
      for (const m of this.#queue)
        if (next === undefined || m.at < next.at || (m.at === next.at && m.seq < next.seq)) next = m;
      let timerAt: number | undefined;
      let timerId: number | undefined;
      for (const [id, r] of this.routers) {
        const t = r.nextDeadline();
        if (t !== undefined && (timerAt === undefined || t < timerAt)) {
          timerAt = t;
          timerId = id;
        }
      }
      const t = Math.min(next?.at ?? Number.POSITIVE_INFINITY, timerAt ?? Number.POSITIVE_INFINITY);
      if (!(t <= until)) break;
      this.now = Math.max(this.now, t);
      if (next !== undefined && next.at === t) {
        this.#queue.splice(this.#queue.indexOf(next), 1);
        const r = this.routers.get(next.to);
        if (r !== undefined && this.links.has(this.#key(next.from, next.to))) {
          r.receive(this.now, next.from, decode(next.bytes).msg as RoutingMessage);
        }
      } else if (timerId !== undefined) {
        this.r(timerId).handleTimeout(this.now);
      }
    }
    if (until !== Number.POSITIVE_INFINITY && until > this.now) this.now = until;
    this.pump();
  }

  /** All routers hold the same database. */
  agree(ids: number[] = [...this.routers.keys()]): boolean {
    const ref = JSON.stringify(this.r(ids[0] as number).database());
    return ids.every((id) => JSON.stringify(this.r(id).database()) === ref);
  }
}
