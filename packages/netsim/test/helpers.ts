import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";

/** Records every packet it receives, with the time and the sender. */
export class Recorder implements NodeProgram {
  readonly host: Host;
  readonly got: { t: number; from: NodeId; data: Uint8Array }[] = [];
  constructor(host: Host) {
    this.host = host;
  }
  receive(from: NodeId, data: Uint8Array): void {
    this.got.push({ t: this.host.clock.now(), from, data });
  }
}

/** A packet carrying a 32-bit sequence number and the send time (float64). */
export function stamp(seq: number, t: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, seq);
  v.setFloat64(4, t);
  return b;
}

export function unstamp(b: Uint8Array): { seq: number; t: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { seq: v.getUint32(0), t: v.getFloat64(4) };
}

/** Sends `count` stamped packets to `to`, one every `gapMs`, starting at `startMs`. */
export class Sender implements NodeProgram {
  readonly host: Host;
  sent = 0;
  constructor(host: Host, to: NodeId, count: number, gapMs: number, size = 12, startMs = 0) {
    this.host = host;
    const tick = (): void => {
      const b = new Uint8Array(Math.max(12, size));
      b.set(stamp(this.sent, host.clock.now()));
      host.send(to, b);
      this.sent++;
      if (this.sent < count) host.schedule(host.clock.now() + gapMs, tick);
    };
    if (count > 0) host.schedule(startMs, tick);
  }
  receive(): void {}
}

/**
 * Gossip with randomness: on each timer tick sends a random-size packet to a random neighbour; on
 * receipt, sometimes answers. Exercises every source of nondeterminism a protocol would have.
 */
export class Chatter implements NodeProgram {
  readonly host: Host;
  readonly peers: NodeId[];
  received = 0;
  constructor(host: Host, peers: NodeId[]) {
    this.host = host;
    this.peers = peers;
    const tick = (): void => {
      const n = 1 + host.rng.int(64);
      host.send(host.rng.pick(peers), host.rng.bytes(n));
      host.schedule(host.clock.now() + host.rng.exponential(5), tick);
    };
    host.schedule(host.rng.uniform(0, 5), tick);
  }
  receive(from: NodeId, data: Uint8Array): void {
    this.received++;
    if (this.host.rng.chance(0.3)) this.host.send(from, data.subarray(0, 1 + (data.length >> 1)));
  }
}
