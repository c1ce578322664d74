/**
 * A stand-in for the link layer, for tests only: drives one `Router` on a netsim node. Liveness is
 * a tiny hello exchange (not a wire message: first byte 0x00, then the sender's incarnation and the
 * last incarnation it heard from us); a link is up once hellos have gone both ways, down after
 * `deadMs` of silence or when the neighbour's incarnation changes. Routing messages and overlay
 * datagrams go as ordinary wire frames straight over the netsim link.
 */
import type { Cancel, Host, NodeProgram } from "@spines-ts/primitives";
import {
  type Datagram,
  DestKind,
  decode,
  encode,
  type Message,
  type RoutingMessage,
  WireError,
} from "@spines-ts/wire";
import type { LinkMeasurement } from "../../src/index.ts";
import { Router, type RouterOptions } from "../../src/index.ts";

export interface DriverOptions {
  /** Nodes this one may be linked to (the topology as built; the driver probes them all). */
  readonly neighbors: readonly number[];
  readonly helloMs: number;
  readonly deadMs: number;
  readonly router?: Omit<RouterOptions, "id" | "incarnation">;
  /** Measurements this node reports on link-up to `neighbor`. */
  readonly metricsFor?: (node: number, neighbor: number) => LinkMeasurement | undefined;
  /** Called for every overlay datagram delivered to this node. */
  readonly onDeliver?: (node: number, d: Datagram) => void;
  /** Set to this node's id whenever it handles an event (lets a cheap invariant look at it). */
  readonly active?: { id: number };
  /** Called when the driver brings a link up or down. */
  readonly onLinkChange?: (node: number, peer: number, up: boolean, at: number) => void;
  /** Groups to join at start. */
  readonly groups?: readonly number[];
}

interface Peer {
  inc: number;
  lastHeard: number;
  up: boolean;
}

export class RoutingNode implements NodeProgram {
  readonly host: Host;
  readonly router: Router;
  readonly incarnation: number;
  decodeErrors = 0;
  readonly #opts: DriverOptions;
  readonly #peers = new Map<number, Peer>();
  #timer: Cancel | undefined;
  #timerAt: number | undefined;

  constructor(host: Host, opts: DriverOptions) {
    this.host = host;
    this.#opts = opts;
    this.incarnation = host.rng.uint32() >>> 0;
    this.router = new Router({ ...(opts.router ?? {}), id: host.id, incarnation: this.incarnation });
    for (const n of opts.neighbors) this.#peers.set(n, { inc: 0, lastHeard: -1, up: false });
    for (const g of opts.groups ?? []) this.router.join(host.clock.now(), g);
    this.#hello();
    this.#pump();
  }

  #now(): number {
    return this.host.clock.now();
  }

  #hello(): void {
    const now = this.#now();
    if (this.#opts.active) this.#opts.active.id = this.host.id;
    for (const [id, p] of this.#peers) {
      if (p.up && now - p.lastHeard > this.#opts.deadMs) {
        p.up = false;
        this.router.linkDown(now, id);
        this.#opts.onLinkChange?.(this.host.id, id, false, now);
      }
      const b = new Uint8Array(9);
      const dv = new DataView(b.buffer);
      dv.setUint32(1, this.incarnation);
      dv.setUint32(5, p.inc);
      this.host.send(id, b);
    }
    this.#pump();
    this.host.schedule(now + this.#opts.helloMs, () => this.#hello());
  }

  #onHello(from: number, data: Uint8Array): void {
    const p = this.#peers.get(from);
    if (p === undefined || data.length !== 9) return;
    const now = this.#now();
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const inc = dv.getUint32(1);
    const heard = dv.getUint32(5);
    if (p.inc !== inc) {
      // a new incarnation of the neighbour: the old adjacency is gone
      if (p.up) {
        p.up = false;
        this.router.linkDown(now, from);
        this.#opts.onLinkChange?.(this.host.id, from, false, now);
      }
      p.inc = inc;
    }
    p.lastHeard = now;
    if (!p.up && heard === this.incarnation) {
      p.up = true;
      this.router.linkUp(now, from, this.#opts.metricsFor?.(this.host.id, from));
      this.#opts.onLinkChange?.(this.host.id, from, true, now);
    }
  }

  receive(from: number, data: Uint8Array): void {
    if (this.#opts.active) this.#opts.active.id = this.host.id;
    if (data[0] === 0) {
      this.#onHello(from, data);
      this.#pump();
      return;
    }
    let msg: Message;
    try {
      const f = decode(data);
      const p = this.#peers.get(from);
      // frames from an old incarnation of the neighbour are stale
      if (p === undefined || f.incarnation !== p.inc || !p.up) return;
      msg = f.msg;
    } catch (e) {
      if (e instanceof WireError) {
        this.decodeErrors++;
        return;
      }
      throw e;
    }
    if (msg._tag === "Datagram") this.#onDatagram(from, msg);
    else if (msg._tag === "RouteUpdate" || msg._tag === "RouteAck") {
      this.router.receive(this.#now(), from, msg as RoutingMessage);
    }
    this.#pump();
  }

  join(group: number): void {
    this.router.join(this.#now(), group);
    this.#pump();
  }

  leave(group: number): void {
    this.router.leave(this.#now(), group);
    this.#pump();
  }

  /** Originates an overlay datagram (unicast, multicast or anycast) from this node. */
  sendDatagram(d: Datagram): void {
    this.#forward(undefined, d);
    this.#pump();
  }

  #onDatagram(from: number, d: Datagram): void {
    this.#forward(from, d);
  }

  #forward(from: number | undefined, d: Datagram): void {
    const h = d.header;
    const me = this.host.id;
    if (h.dstKind === DestKind.Multicast) {
      const m = this.router.multicast(h.src, h.dst);
      if (m.deliverLocally) this.#opts.onDeliver?.(me, d);
      if (h.ttl === 0) return;
      const next = { ...d, header: { ...h, ttl: h.ttl - 1 } };
      for (const n of m.nextHops) if (n !== from) this.#send(n, next);
      return;
    }
    const target = h.dstKind === DestKind.Anycast ? this.router.anycastNearest(h.dst) : h.dst;
    if (target === undefined) return;
    if (target === me) {
      this.#opts.onDeliver?.(me, d);
      return;
    }
    const hop = this.router.nextHop(target);
    if (hop === undefined || h.ttl === 0) return;
    this.#send(hop, { ...d, header: { ...h, ttl: h.ttl - 1 } });
  }

  #send(to: number, msg: Message): void {
    this.host.send(to, encode({ sender: this.host.id, incarnation: this.incarnation }, msg));
  }

  #pump(): void {
    for (let out = this.router.takeTransmits(); out.length > 0; out = this.router.takeTransmits()) {
      for (const o of out) this.#send(o.to, o.msg);
    }
    this.router.takeEvents(); // route events are not needed by the tests
    const at = this.router.nextDeadline();
    if (at === this.#timerAt) return;
    this.#timer?.();
    this.#timerAt = at;
    if (at !== undefined) {
      this.#timer = this.host.schedule(Math.max(at, this.#now()), () => {
        this.#timerAt = undefined;
        this.#timer = undefined;
        if (this.#opts.active) this.#opts.active.id = this.host.id;
        this.router.handleTimeout(this.#now());
        this.#pump();
      });
    }
  }

  /** No up link is at risk of being declared dead: every up neighbour was heard within `withinMs`. */
  linksFresh(withinMs: number): boolean {
    const now = this.#now();
    for (const p of this.#peers.values()) if (p.up && now - p.lastHeard > withinMs) return false;
    return true;
  }

  /** Neighbours whose link the driver holds up. */
  upPeers(): number[] {
    return [...this.#peers].filter(([, p]) => p.up).map(([id]) => id);
  }
}
