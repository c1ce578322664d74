/**
 * Seeded mutations of golden frames. Every kind takes a valid frame of the corpus and returns a
 * datagram; all randomness comes from one `Rng`, so a seed replays the exact packet sequence.
 */
import type { Rng } from "@spines-ts/primitives";
import { AUTH_TRAILER_BYTES } from "@spines-ts/wire";
import type { SeedFrame } from "./corpus.ts";

export const HEADER = 16;
const FLAGS_AT = 4;
const LENGTH_AT = 6;
const SENDER_AT = 8;
const INCARNATION_AT = 12;

export const MUTATION_KINDS = [
  /** 1-8 random bit flips anywhere. */
  "bitflip",
  /** Cut at a random length (the length field left as it was). */
  "truncate",
  /** Random bytes appended (length field fixed up half the time). */
  "extend",
  /** One header field (magic, version, type, flags, reserved, sender, incarnation) set to an edge value. */
  "header-field",
  /** The body length field lies: too short, too long, 0, 0xffff. */
  "length-lie",
  /** Random bytes, half of them behind a plausible header so they reach the body decoders. */
  "random-bytes",
  /** Another message type over this body (every decoder sees every other message's body). */
  "type-swap",
  /** A range of this frame replaced by a range of another one, length fixed up. */
  "splice",
  /** Body fields (sequence numbers, counts, ids) set to edge values, length kept valid. */
  "field-edge",
  /** A valid frame with a wrong sender incarnation and randomised sequence fields. */
  "wrong-incarnation",
  /** A golden frame (or one sent earlier in this run) sent again verbatim. */
  "replay",
  /** The golden invalid vectors, verbatim. */
  "invalid-vector",
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export interface MutationContext {
  readonly rng: Rng;
  /** Frames of the families the target speaks. */
  readonly pool: readonly SeedFrame[];
  /** Frames of every family (for splices and foreign bodies). */
  readonly all: readonly SeedFrame[];
  readonly invalid: readonly SeedFrame[];
  /** Every registered message type. */
  readonly types: readonly number[];
  /**
   * The identity fuzzed frames claim (sender, incarnation); `undefined` keeps the vector's sender.
   * Chosen by the caller so that frames pass (or deliberately fail) the target's sender checks.
   */
  readonly sender: number | undefined;
  /** Recently sent datagrams, for replays (bounded by the caller). */
  readonly history: readonly Uint8Array[];
}

const EDGE_U8 = [0, 1, 0x7f, 0x80, 0xfe, 0xff];
const EDGE_U32 = [0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

function putU32(b: Uint8Array, at: number, v: number): void {
  if (at + 4 > b.length) return;
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** Rewrites the body length so the frame reaches the body decoder (trailer length from `trailer`). */
export function fixLength(b: Uint8Array, trailer: number): void {
  if (b.length < HEADER) return;
  const t = (b[FLAGS_AT] as number) & 1 ? trailer : 0;
  const body = b.length - HEADER - t;
  if (body < 0 || body > 0xffff) return;
  b[LENGTH_AT] = body >>> 8;
  b[LENGTH_AT + 1] = body & 0xff;
}

function stamp(ctx: MutationContext, b: Uint8Array): void {
  if (b.length < HEADER) return;
  if (ctx.sender !== undefined) putU32(b, SENDER_AT, ctx.sender);
  putU32(b, INCARNATION_AT, ctx.rng.uint32());
}

function concat(a: Uint8Array, c: Uint8Array): Uint8Array {
  const n = new Uint8Array(a.length + c.length);
  n.set(a);
  n.set(c, a.length);
  return n;
}

/** The authentication trailer length the fixups assume (docs/wire.md §1.3). */
const trailerBytes = AUTH_TRAILER_BYTES;

export function mutate(kind: MutationKind, ctx: MutationContext): Uint8Array {
  const { rng } = ctx;
  const base = rng.pick(ctx.pool).bytes;
  let b: Uint8Array = base.slice();
  switch (kind) {
    case "bitflip": {
      stamp(ctx, b);
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips; i++) {
        const at = rng.int(b.length);
        b[at] = (b[at] as number) ^ (1 << rng.int(8));
      }
      return b;
    }
    case "truncate":
      stamp(ctx, b);
      return b.slice(0, rng.int(b.length));
    case "extend": {
      stamp(ctx, b);
      b = concat(b, rng.bytes(1 + rng.int(rng.chance(0.7) ? 8 : 600)));
      if (rng.chance(0.5)) fixLength(b, trailerBytes);
      return b;
    }
    case "header-field": {
      stamp(ctx, b);
      switch (rng.int(7)) {
        case 0:
          b[rng.int(2)] = rng.pick(EDGE_U8);
          break;
        case 1:
          b[2] = rng.pick([0, 1, 3, 0xff, rng.int(256)]);
          break;
        case 2:
          b[3] = rng.chance(0.5) ? rng.int(256) : rng.pick(ctx.types);
          break;
        case 3:
          b[FLAGS_AT] = rng.pick([1, 2, 0x80, 0xff, rng.int(256)]);
          break;
        case 4:
          b[5] = rng.pick([1, 0x80, 0xff]);
          break;
        case 5:
          putU32(b, SENDER_AT, rng.pick([...EDGE_U32, rng.uint32()]));
          break;
        default:
          putU32(b, INCARNATION_AT, rng.pick(EDGE_U32));
          break;
      }
      return b;
    }
    case "length-lie": {
      stamp(ctx, b);
      const body = Math.max(0, b.length - HEADER);
      const lie = rng.pick([
        0,
        1,
        0xffff,
        body + 1,
        Math.max(0, body - 1),
        body + 1 + rng.int(100),
        rng.int(0x10000),
      ]);
      b[LENGTH_AT] = (lie >>> 8) & 0xff;
      b[LENGTH_AT + 1] = lie & 0xff;
      return b;
    }
    case "random-bytes": {
      b = rng.bytes(rng.int(rng.chance(0.9) ? 64 : 1400));
      if (rng.chance(0.5) && b.length >= HEADER) {
        b[0] = 0x53;
        b[1] = 0x50;
        b[2] = 2;
        b[3] = rng.pick(ctx.types);
        b[FLAGS_AT] = 0;
        b[5] = 0;
        stamp(ctx, b);
        fixLength(b, trailerBytes);
      }
      return b;
    }
    case "type-swap":
      stamp(ctx, b);
      if (b.length > 3) b[3] = rng.pick(ctx.types);
      return b;
    case "splice": {
      stamp(ctx, b);
      const other = rng.pick(ctx.all).bytes;
      const a = HEADER + rng.int(Math.max(1, b.length - HEADER + 1));
      const cut = rng.int(Math.max(1, b.length - a + 1));
      const oa = rng.int(other.length + 1);
      const piece = other.subarray(oa, oa + rng.int(other.length - oa + 1));
      const nb = new Uint8Array(Math.max(0, b.length - cut) + piece.length);
      nb.set(b.subarray(0, Math.min(a, b.length)));
      nb.set(piece, Math.min(a, b.length));
      nb.set(b.subarray(Math.min(b.length, a + cut)), Math.min(a, b.length) + piece.length);
      fixLength(nb, trailerBytes);
      return nb;
    }
    case "field-edge": {
      stamp(ctx, b);
      const n = 1 + rng.int(3);
      for (let i = 0; i < n && b.length > HEADER; i++) {
        const at = HEADER + rng.int(b.length - HEADER);
        if (rng.chance(0.5)) b[at] = rng.pick(EDGE_U8);
        else putU32(b, at, rng.pick(EDGE_U32));
      }
      return b;
    }
    case "wrong-incarnation": {
      stamp(ctx, b);
      // sequence-like fields: a few u32 slots of the body get random values
      const n = rng.int(3);
      for (let i = 0; i < n && b.length >= HEADER + 4; i++) {
        putU32(b, HEADER + 4 * rng.int((b.length - HEADER) >> 2), rng.uint32());
      }
      return b;
    }
    case "replay":
      if (ctx.history.length > 0 && rng.chance(0.5)) return rng.pick(ctx.history);
      if (ctx.sender !== undefined && b.length >= HEADER) putU32(b, SENDER_AT, ctx.sender);
      return b;
    case "invalid-vector":
      return rng.pick(ctx.invalid.length > 0 ? ctx.invalid : ctx.pool).bytes;
  }
}
