/**
 * The forwarding plane: what turns received frames into deliveries and forwarded frames, and
 * client sends into frames. `DirectPlane` is the one that needs no protocol core: best-effort
 * datagrams to and through direct neighbours only. The integrated plane (link-arq + routing +
 * session) implements the same interface.
 */
import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import { RateLimitedLog } from "@spines-ts/primitives";
import { type Datagram, DestKind, decode, encodeInto, WireError, Writer } from "@spines-ts/wire";
import { ClientErrorCode, LinkType } from "./client-protocol.ts";
import type { DatagramTransport } from "./sessions.ts";

export interface NeighborStatus {
  readonly id: NodeId;
  readonly endpoint: string;
  readonly state: string;
  readonly lastHeardMsAgo: number | null;
  readonly rxFrames: number;
  readonly txFrames: number;
}

export interface LinkStatus {
  readonly neighbor: NodeId;
  readonly type: string;
  readonly state: string;
  readonly rttMs: number | null;
  readonly loss: number | null;
  readonly window: number | null;
  /** Received packets the link holds for the owner (back-pressure towards the neighbour). */
  readonly queue: number;
  /** Loss of the neighbour's data as measured here. */
  readonly lossIn?: number;
  readonly bytesInFlight?: number;
}

export interface RouteStatus {
  readonly dst: NodeId;
  readonly nextHop: NodeId;
  readonly cost: number;
  /** Node ids from this node to dst inclusive, when known. */
  readonly path?: readonly NodeId[];
}

export interface PlaneCounters {
  rxFrames: number;
  decodeErrors: number;
  senderMismatch: number;
  unexpectedType: number;
  delivered: number;
  forwarded: number;
  noRoute: number;
  ttlExpired: number;
  noPort: number;
}

export interface ForwardingPlane extends NodeProgram, DatagramTransport {
  readonly counters: PlaneCounters;
  /** Decode errors by WireError code. */
  readonly decodeErrorsByCode: ReadonlyMap<string, number>;
  neighbors(): NeighborStatus[];
  links(): LinkStatus[];
  routes(): RouteStatus[];
  groups(): unknown[];
}

export const DEFAULT_TTL = 64;

export function newCounters(): PlaneCounters {
  return {
    rxFrames: 0,
    decodeErrors: 0,
    senderMismatch: 0,
    unexpectedType: 0,
    delivered: 0,
    forwarded: 0,
    noRoute: 0,
    ttlExpired: 0,
    noPort: 0,
  };
}

/** Delivers a datagram that reached its destination node. Returns false if no socket has the port. */
export type LocalDelivery = (srcNode: NodeId, srcPort: number, dstPort: number, data: Uint8Array) => boolean;

export class DirectPlane implements ForwardingPlane {
  readonly counters = newCounters();
  readonly decodeErrorsByCode = new Map<string, number>();
  readonly #host: Host & { peer?(id: NodeId): { address: string; port: number } | undefined };
  readonly #neighbors: ReadonlyMap<NodeId, string>;
  readonly #incarnation: number;
  readonly #deliver: LocalDelivery;
  readonly #rl: RateLimitedLog;
  readonly #w = new Writer(2048);
  readonly #perNeighbor = new Map<NodeId, { lastHeard: number; rx: number; tx: number }>();

  constructor(host: Host, neighbors: ReadonlyMap<NodeId, string>, deliver: LocalDelivery) {
    this.#host = host;
    this.#neighbors = neighbors;
    this.#incarnation = host.rng.uint32();
    this.#deliver = deliver;
    this.#rl = new RateLimitedLog(host.log, 1000, 5);
    for (const id of neighbors.keys()) this.#perNeighbor.set(id, { lastHeard: -1, rx: 0, tx: 0 });
  }

  receive(from: NodeId, data: Uint8Array): void {
    this.counters.rxFrames++;
    const now = this.#host.clock.now();
    let frame: ReturnType<typeof decode>;
    try {
      frame = decode(data);
    } catch (e) {
      this.counters.decodeErrors++;
      const code = e instanceof WireError ? e.code : "ERR_UNKNOWN";
      this.decodeErrorsByCode.set(code, (this.decodeErrorsByCode.get(code) ?? 0) + 1);
      this.#rl.debug(now, `decode:${code}`, { from, code, bytes: data.length }, "undecodable frame dropped");
      return;
    }
    if (frame.sender !== from) {
      this.counters.senderMismatch++;
      this.#rl.debug(
        now,
        "sender",
        { from, sender: frame.sender },
        "frame sender does not match the peer; dropped",
      );
      return;
    }
    const n = this.#perNeighbor.get(from);
    if (n) {
      n.lastHeard = now;
      n.rx++;
    }
    if (frame.msg._tag !== "Datagram") {
      this.counters.unexpectedType++;
      this.#rl.debug(
        now,
        "type",
        { from, tag: frame.msg._tag },
        "frame type not handled by this plane; dropped",
      );
      return;
    }
    this.#onDatagram(frame.msg);
  }

  #onDatagram(m: Datagram): void {
    const h = m.header;
    if (h.dstKind !== DestKind.Node) {
      this.counters.noRoute++;
      return;
    }
    if (h.dst === this.#host.id) {
      if (this.#deliver(h.src, h.srcPort, h.dstPort, m.payload)) this.counters.delivered++;
      else this.counters.noPort++;
      return;
    }
    if (h.ttl <= 1) {
      this.counters.ttlExpired++;
      return;
    }
    if (!this.#neighbors.has(h.dst)) {
      this.counters.noRoute++;
      return;
    }
    this.counters.forwarded++;
    this.#send(h.dst, { _tag: "Datagram", header: { ...h, ttl: h.ttl - 1 }, payload: m.payload });
  }

  #send(to: NodeId, m: Datagram): void {
    const bytes = encodeInto(this.#w, { sender: this.#host.id, incarnation: this.#incarnation }, m);
    const n = this.#perNeighbor.get(to);
    if (n) n.tx++;
    this.#host.send(to, bytes);
  }

  sendDatagram(
    srcPort: number,
    dst: NodeId,
    dstPort: number,
    link: LinkType,
    data: Uint8Array,
  ): { ok: true } | { ok: false; code: string; message: string } {
    if (link !== LinkType.BestEffort) {
      return {
        ok: false,
        code: ClientErrorCode.NotSupported,
        message: "only best-effort links are available without the link core",
      };
    }
    if (!this.#neighbors.has(dst)) {
      this.counters.noRoute++;
      return { ok: false, code: ClientErrorCode.Unreachable, message: `no route to node ${dst}` };
    }
    if (data.length > 65_000) {
      return { ok: false, code: ClientErrorCode.TooLarge, message: "datagram too large for one frame" };
    }
    this.#send(dst, {
      _tag: "Datagram",
      header: { src: this.#host.id, srcPort, dst, dstPort, dstKind: DestKind.Node, ttl: DEFAULT_TTL },
      payload: data,
    });
    return { ok: true };
  }

  neighbors(): NeighborStatus[] {
    const now = this.#host.clock.now();
    return [...this.#neighbors].map(([id, endpoint]) => {
      const n = this.#perNeighbor.get(id);
      const heard = n && n.lastHeard >= 0 ? now - n.lastHeard : null;
      return {
        id,
        endpoint,
        state: heard === null ? "unknown" : "heard",
        lastHeardMsAgo: heard === null ? null : Math.round(heard),
        rxFrames: n?.rx ?? 0,
        txFrames: n?.tx ?? 0,
      };
    });
  }

  links(): LinkStatus[] {
    return [...this.#neighbors.keys()].map((id) => ({
      neighbor: id,
      type: "best-effort",
      state: "static",
      rttMs: null,
      loss: null,
      window: null,
      queue: 0,
    }));
  }

  routes(): RouteStatus[] {
    return [...this.#neighbors.keys()].map((id) => ({ dst: id, nextHop: id, cost: 1 }));
  }

  groups(): unknown[] {
    return [];
  }
}
