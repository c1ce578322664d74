/**
 * Issue 12 in netsim: an off-path attacker who knows both nodes' addresses and incarnations (not
 * the nonces in their hellos) injects forged frames into both ends of a busy link: Hellos with
 * random incarnations, Goodbyes with the real incarnation, genuine hellos captured earlier with
 * the Goodbye bit flipped, and data and acks under random incarnations. Both nodes stream reliable
 * packets to each other meanwhile, optionally from an ISN just below the 2^32 wrap.
 */
import { Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { decode, encode, type Hello, HelloFlag, LinkChannel } from "@spines-ts/wire";
import { type Delivery, type LinkEvent, SendResult } from "../../src/index.ts";
import { adverseParams, header, LinkNode } from "./scenarios.ts";

export interface ForgerySeedResult {
  seed: number;
  forged: number;
  /** Forged frames by kind. */
  kinds: Record<string, number>;
  delivered: number;
  duplicates: number;
  sent: number;
  /** "restart" events and "down" events for a goodbye or a restart, both nodes. */
  restarts: number;
  goodbyeDowns: number;
  /** The incarnation each node holds for the other at the end equals the real one. */
  incarnationsKept: boolean;
  unproven: number;
  forgedGoodbyes: number;
  wrapped: boolean;
}

const TWO32 = 2 ** 32;

export function runForgerySeed(seed: number, opts: { packets: number; wrap: boolean }): ForgerySeedResult {
  const rng = new Rng(seed ^ 0xf0e6);
  const cond = adverseParams(rng, 0.1, false);
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const isn = opts.wrap ? TWO32 - 1 - Math.floor(rng.uniform(0, opts.packets / 2)) : undefined;
  const config = {
    sendBufferPackets: 64,
    perFlowPackets: 64,
    ...(isn !== undefined ? { initialSequence: isn } : {}),
  };
  const nodes = new Map<number, LinkNode>();
  const captured: Uint8Array[] = [];
  const seen = [new Set<number>(), new Set<number>()];
  let delivered = 0;
  let duplicates = 0;
  let restarts = 0;
  let goodbyeDowns = 0;
  const sent = [0, 0];
  const pay = (id: number): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, id);
    return b;
  };
  const push = (n: LinkNode, self: number): void => {
    const peer = 3 - self;
    while (sent[self - 1]! < opts.packets) {
      const r = n.driver.send(peer, LinkChannel.Reliable, header(), pay(sent[self - 1]!));
      if (r !== SendResult.Ok) break;
      sent[self - 1]!++;
    }
  };
  for (const self of [1, 2]) {
    sim.addNode(self, (host) => {
      const n: LinkNode = new LinkNode(host, {
        config,
        onEvent: (_p, e: LinkEvent) => {
          if (e.type === "restart") restarts++;
          if (e.type === "down" && (e.reason === "goodbye" || e.reason === "restart")) goodbyeDowns++;
          if (e.type === "up" || e.type === "writable") push(n, self);
        },
        onDelivery: (_p, d: Delivery) => {
          const id = new DataView(d.payload.buffer, d.payload.byteOffset).getUint32(0);
          const s = seen[self - 1]!;
          if (s.has(id)) duplicates++;
          else {
            s.add(id);
            delivered++;
          }
          return true;
        },
      });
      n.driver.addNeighbour(3 - self);
      const inner = n.receive.bind(n);
      n.receive = (from, data) => {
        try {
          const f = decode(data);
          if (f.msg._tag === "Hello" && captured.length < 64) captured.push(data.slice());
        } catch {
          // not ours to judge
        }
        inner(from, data);
      };
      nodes.set(self, n);
      return n;
    });
  }
  sim.connect(1, 2, cond.params);
  const kinds: Record<string, number> = { hello: 0, goodbye: 0, flipped: 0, data: 0 };
  let forged = 0;
  const hello = (m: Partial<Hello>): Hello => ({
    _tag: "Hello",
    peerIncarnation: 0,
    seq: rng.uint32(),
    ts: rng.uint32(),
    echoTs: 0,
    echoDelay: 0xffffffff,
    nonce: rng.uint32() || 1,
    nonceEcho: rng.uint32(),
    lossIn: 0,
    flags: 0,
    ...m,
  });
  const attack = (): void => {
    const target = rng.chance(0.5) ? 1 : 2;
    const victim = 3 - target;
    const t = nodes.get(target);
    const v = nodes.get(victim);
    if (t === undefined || v === undefined) return;
    const realInc = v.driver.incarnation;
    const targetInc = t.driver.incarnation;
    const k = Math.floor(rng.uniform(0, 4));
    let bytes: Uint8Array | undefined;
    if (k === 0) {
      bytes = encode(
        { sender: victim, incarnation: rng.uint32() || 1 },
        hello({ peerIncarnation: targetInc }),
      );
      kinds.hello!++;
    } else if (k === 1) {
      bytes = encode(
        { sender: victim, incarnation: realInc },
        hello({ peerIncarnation: targetInc, nonce: 0, flags: HelloFlag.Goodbye }),
      );
      kinds.goodbye!++;
    } else if (k === 2 && captured.length > 0) {
      const c = captured[Math.floor(rng.uniform(0, captured.length))]!.slice();
      const f = decode(c);
      if (f.sender !== victim) return;
      c[c.length - 1]! ^= HelloFlag.Goodbye;
      bytes = c;
      kinds.flipped!++;
    } else {
      bytes = encode(
        { sender: victim, incarnation: rng.uint32() || 1 },
        {
          _tag: "LinkData",
          peerIncarnation: targetInc,
          channel: LinkChannel.Reliable,
          flags: 0,
          seq: rng.uint32(),
          ts: 0,
          header: header(),
          payload: pay(0xffffff),
        },
      );
      kinds.data!++;
    }
    if (bytes === undefined) return;
    forged++;
    t.receive(victim, bytes);
  };
  let at = 300;
  while (at < 20_000) {
    sim.at(at, attack);
    at += rng.uniform(10, 200);
  }
  sim.runUntil(() => delivered >= 2 * opts.packets && sim.now > 20_000, 120_000);
  const n1 = nodes.get(1)!;
  const n2 = nodes.get(2)!;
  const l1 = n1.driver.link(2)!;
  const l2 = n2.driver.link(1)!;
  return {
    seed,
    forged,
    kinds,
    delivered,
    duplicates,
    sent: sent[0]! + sent[1]!,
    restarts,
    goodbyeDowns,
    incarnationsKept:
      l1.peerIncarnation === n2.driver.incarnation && l2.peerIncarnation === n1.driver.incarnation,
    unproven: l1.stats.unproven + l2.stats.unproven,
    forgedGoodbyes: l1.stats.forgedGoodbyes + l2.stats.forgedGoodbyes,
    wrapped: isn !== undefined && isn + opts.packets > TWO32,
  };
}
