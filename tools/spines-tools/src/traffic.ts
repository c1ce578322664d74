/**
 * The traffic spines-send offers and spines-recv measures. Every message opens with a 32-byte
 * header (big-endian): magic "SPTR" u32, flags u8 (1 = end of run) + 3 spare bytes, run id u32,
 * sequence u32 (from 0), message size u32 (header included), send time f64 (ms since the epoch, with
 * sub-ms resolution: both tools must run on one host, or hosts with synchronised clocks), and in
 * the end-of-run message the number of messages sent, u32.
 */
export const TRAFFIC_MAGIC = 0x53505452; // "SPTR"
export const HEADER_BYTES = 32;
export const FLAG_END = 1;

export interface Header {
  readonly flags: number;
  readonly run: number;
  readonly seq: number;
  readonly size: number;
  readonly sentAt: number;
  readonly total: number;
}

export function writeHeader(b: Buffer, h: Header): void {
  b.writeUInt32BE(TRAFFIC_MAGIC, 0);
  b.writeUInt8(h.flags, 4);
  b.writeUInt32BE(h.run >>> 0, 8);
  b.writeUInt32BE(h.seq >>> 0, 12);
  b.writeUInt32BE(h.size >>> 0, 16);
  b.writeDoubleBE(h.sentAt, 20);
  b.writeUInt32BE(h.total >>> 0, 28);
}

/** The header at `off`, or undefined if the bytes are not a traffic header. */
export function readHeader(b: Buffer, off = 0): Header | undefined {
  if (b.length - off < HEADER_BYTES || b.readUInt32BE(off) !== TRAFFIC_MAGIC) return undefined;
  const size = b.readUInt32BE(off + 16);
  if (size < HEADER_BYTES) return undefined;
  return {
    flags: b.readUInt8(off + 4),
    run: b.readUInt32BE(off + 8),
    seq: b.readUInt32BE(off + 12),
    size,
    sentAt: b.readDoubleBE(off + 20),
    total: b.readUInt32BE(off + 28),
  };
}

/** Latency samples kept for percentiles, at most (a uniform reservoir beyond). */
export const MAX_SAMPLES = 200_000;

/** Receive-side measurements of one run. Every table is bounded. */
export class RunStats {
  received = 0;
  bytes = 0;
  duplicates = 0;
  reordered = 0;
  maxSeq = -1;
  /** Messages the sender says it sent (from its end-of-run message), when known. */
  announced: number | undefined;
  firstAt: number | undefined;
  lastAt: number | undefined;
  latencySum = 0;
  latencyMax = 0;
  /** RFC 3550 interarrival jitter, ms. */
  jitter = 0;
  #lastTransit: number | undefined;
  readonly #samples: number[] = [];
  /** Sequence numbers seen, as a sliding bitmap (duplicates older than its span count as new). */
  readonly #seen = new Set<number>();
  static readonly SEEN_SPAN = 65_536;

  /** One data message of `bytes`, sent at `sentAt`, whose last byte arrived at `now`. */
  add(seq: number, bytes: number, sentAt: number, now: number): void {
    if (this.#seen.has(seq)) {
      this.duplicates++;
      return;
    }
    this.#seen.add(seq);
    if (this.#seen.size > RunStats.SEEN_SPAN) {
      const cut = seq - RunStats.SEEN_SPAN;
      for (const s of this.#seen) if (s < cut) this.#seen.delete(s);
    }
    if (seq < this.maxSeq) this.reordered++;
    else this.maxSeq = seq;
    this.received++;
    this.bytes += bytes;
    this.firstAt ??= now;
    this.lastAt = now;
    const lat = now - sentAt;
    this.latencySum += lat;
    if (lat > this.latencyMax) this.latencyMax = lat;
    if (this.#samples.length < MAX_SAMPLES) this.#samples.push(lat);
    else {
      const j = Math.floor(Math.random() * this.received);
      if (j < MAX_SAMPLES) this.#samples[j] = lat;
    }
    if (this.#lastTransit !== undefined)
      this.jitter += (Math.abs(lat - this.#lastTransit) - this.jitter) / 16;
    this.#lastTransit = lat;
  }

  get expected(): number {
    return Math.max(this.announced ?? 0, this.maxSeq + 1);
  }

  percentile(p: number): number | null {
    if (this.#samples.length === 0) return null;
    const s = [...this.#samples].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
  }

  summary(): Summary {
    const expected = this.expected;
    const lost = Math.max(0, expected - this.received);
    const span = this.firstAt !== undefined && this.lastAt !== undefined ? this.lastAt - this.firstAt : 0;
    return {
      messages: {
        received: this.received,
        expected,
        lost,
        lossPct: expected === 0 ? 0 : (100 * lost) / expected,
        duplicates: this.duplicates,
        reordered: this.reordered,
      },
      bytes: this.bytes,
      durationMs: span,
      throughputMbps: span > 0 ? (this.bytes * 8) / span / 1000 : null,
      latencyMs:
        this.received === 0
          ? null
          : {
              mean: this.latencySum / this.received,
              p50: this.percentile(50) as number,
              p99: this.percentile(99) as number,
              max: this.latencyMax,
            },
      jitterMs: this.jitter,
    };
  }
}

export interface Summary {
  messages: {
    received: number;
    expected: number;
    lost: number;
    lossPct: number;
    duplicates: number;
    reordered: number;
  };
  bytes: number;
  durationMs: number;
  throughputMbps: number | null;
  latencyMs: { mean: number; p50: number; p99: number; max: number } | null;
  jitterMs: number;
}

/**
 * Splits a byte stream into traffic messages: `push(chunk, now)` calls `onMessage` once the last
 * byte of each message is in. Holds at most one header's worth of bytes (payload is skipped).
 */
export class StreamParser {
  #head = Buffer.alloc(0);
  #remaining = 0;
  #current: Header | undefined;
  readonly #onMessage: (h: Header, now: number) => void;
  /** Bytes that did not parse as traffic (the stream is then ignored). */
  garbage = 0;

  constructor(onMessage: (h: Header, now: number) => void) {
    this.#onMessage = onMessage;
  }

  push(chunk: Buffer, now: number): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.garbage > 0) {
        this.garbage += chunk.length - off;
        return;
      }
      if (this.#current === undefined) {
        const need = HEADER_BYTES - this.#head.length;
        const take = Math.min(need, chunk.length - off);
        this.#head = Buffer.concat([this.#head, chunk.subarray(off, off + take)]);
        off += take;
        if (this.#head.length < HEADER_BYTES) return;
        const h = readHeader(this.#head);
        this.#head = Buffer.alloc(0);
        if (h === undefined) {
          this.garbage += HEADER_BYTES;
          continue;
        }
        this.#current = h;
        this.#remaining = h.size - HEADER_BYTES;
      }
      const take = Math.min(this.#remaining, chunk.length - off);
      off += take;
      this.#remaining -= take;
      if (this.#remaining === 0 && this.#current !== undefined) {
        const h = this.#current;
        this.#current = undefined;
        this.#onMessage(h, now);
      }
    }
  }
}

/** A one-line progress report, redrawn in place on a terminal. */
export class Progress {
  readonly #out: { write(s: string): unknown } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #drawn = false;

  constructor(out: { write(s: string): unknown }, enabled: boolean, line: () => string) {
    this.#out = enabled ? out : undefined;
    if (this.#out) {
      this.#timer = setInterval(() => {
        this.#out?.write(`\r\x1b[2K${line()}`);
        this.#drawn = true;
      }, 1000);
      this.#timer.unref();
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#drawn) this.#out?.write("\r\x1b[2K");
  }
}

export function mbps(bytes: number, ms: number): number | null {
  return ms > 0 ? (bytes * 8) / ms / 1000 : null;
}
