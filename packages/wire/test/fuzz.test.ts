/**
 * One million random and mutated datagrams: decode must throw WireError and nothing else, no
 * message decoder may throw something that decode had to wrap (a WireError with a `cause`), and
 * every input that does decode must re-encode to the same bytes (canonical encoding). Inputs
 * are drawn from a seeded Rng; a failure prints the seed, the iteration and the input hex. Replay one
 * seed with WIRE_FUZZ_SEED=<seed>; change the count with WIRE_FUZZ_N.
 */
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import {
  AUTH_TRAILER_BYTES,
  decode,
  encode,
  type Frame,
  FrameFlag,
  HEADER_BYTES,
  type Message,
  registry,
  WireError,
} from "../src/index.ts";
import { fromHex, loadVectorFiles, toHex } from "./vectors.ts";

const SEED = Number(process.env.WIRE_FUZZ_SEED ?? 0x5eed_0001);
const N = Number(process.env.WIRE_FUZZ_N ?? 1_000_000);

/** Valid frames to mutate: every golden vector plus random Datagrams. */
function corpus(rng: Rng): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of loadVectorFiles()) for (const v of f.data.valid) if (v.hex) out.push(fromHex(v.hex));
  for (let i = 0; i < 32; i++) {
    const m: Message = {
      _tag: "Datagram",
      header: {
        src: rng.uint32(),
        srcPort: rng.int(0x10000),
        dst: rng.uint32(),
        dstPort: rng.int(0x10000),
        dstKind: rng.pick([0, 1, 2] as const),
        ttl: rng.int(256),
      },
      payload: rng.bytes(rng.chance(0.8) ? rng.int(64) : rng.int(1500)),
    };
    out.push(encode({ sender: rng.uint32(), incarnation: rng.uint32() }, m));
  }
  return out;
}

/** Rewrites the length field so the frame gets past the length checks into the body decoder. */
function fixLength(b: Uint8Array): void {
  if (b.length < HEADER_BYTES) return;
  const trailer = (b[4] as number) & 1 ? 18 : 0;
  const body = b.length - HEADER_BYTES - trailer;
  if (body < 0 || body > 0xffff) return;
  b[6] = body >>> 8;
  b[7] = body & 0xff;
}

function mutate(
  rng: Rng,
  base: Uint8Array,
  pool: readonly Uint8Array[],
  types: readonly number[],
): Uint8Array {
  let b = base.slice();
  const steps = 1 + rng.int(3);
  for (let s = 0; s < steps; s++) {
    switch (rng.int(8)) {
      case 0: {
        // bit flips
        const flips = 1 + rng.int(4);
        for (let i = 0; i < flips && b.length > 0; i++) {
          const at = rng.int(b.length);
          b[at] = (b[at] as number) ^ (1 << rng.int(8));
        }
        break;
      }
      case 1: // truncation
        b = b.slice(0, rng.int(b.length + 1));
        break;
      case 2: {
        // extension with random bytes
        const ext = rng.bytes(1 + rng.int(rng.chance(0.5) ? 4 : 40));
        const nb = new Uint8Array(b.length + ext.length);
        nb.set(b);
        nb.set(ext, b.length);
        b = nb;
        break;
      }
      case 3: {
        // splice: a range of this frame replaced by a range of another one
        const other = rng.pick(pool);
        const a = rng.int(b.length + 1);
        const cut = rng.int(b.length - a + 1);
        const oa = rng.int(other.length + 1);
        const piece = other.subarray(oa, oa + rng.int(other.length - oa + 1));
        const nb = new Uint8Array(b.length - cut + piece.length);
        nb.set(b.subarray(0, a));
        nb.set(piece, a);
        nb.set(b.subarray(a + cut), a + piece.length);
        b = nb;
        break;
      }
      case 4: // a random byte value somewhere, often a boundary value
        if (b.length > 0) b[rng.int(b.length)] = rng.pick([0, 1, 0x7f, 0x80, 0xfe, 0xff, rng.int(256)]);
        break;
      case 5: // another registered type over this body (exercises every decoder on foreign bodies)
        if (b.length > 3 && types.length > 0) b[3] = rng.pick(types);
        break;
      case 6: // toggle the Auth flag
        if (b.length > 4) b[4] = (b[4] as number) ^ 1;
        break;
      default:
        break;
    }
  }
  if (rng.chance(0.7)) fixLength(b);
  return b;
}

function randomBytes(rng: Rng, types: readonly number[]): Uint8Array {
  const b = rng.bytes(rng.int(rng.chance(0.9) ? 48 : 300));
  if (rng.chance(0.5) && b.length >= 4) {
    // a plausible header start so that random bodies reach the decoders
    b[0] = 0x53;
    b[1] = 0x50;
    b[2] = 1;
    if (rng.chance(0.8) && types.length > 0) b[3] = rng.pick(types);
    if (b.length > 5) {
      b[4] = rng.chance(0.8) ? 0 : (b[4] as number);
      b[5] = 0;
    }
    fixLength(b);
  }
  return b;
}

describe("fuzz", () => {
  it(`${N.toLocaleString("en-US")} random and mutated byte strings throw only WireError (seed ${SEED})`, () => {
    const rng = new Rng(SEED);
    const pool = corpus(rng.fork(1));
    const types = registry.specs.map((s) => s.type);
    const outcomes = new Map<string, number>();
    let decoded = 0;
    for (let i = 0; i < N; i++) {
      const input = rng.chance(0.25) ? randomBytes(rng, types) : mutate(rng, rng.pick(pool), pool, types);
      let frame: Frame;
      try {
        frame = decode(input);
      } catch (e) {
        const where = `seed ${SEED} iteration ${i} input ${toHex(input)}`;
        if (!(e instanceof WireError)) {
          throw new Error(`decode threw ${(e as Error)?.name ?? typeof e}, not WireError: ${where}`, {
            cause: e,
          });
        }
        if (e.cause !== undefined) {
          throw new Error(
            `a message decoder threw a non-WireError (wrapped by decode): ${e.message}; ${where}`,
            {
              cause: e.cause,
            },
          );
        }
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
        continue;
      }
      decoded++;
      // Canonical encoding: whatever decodes re-encodes to the same bytes (the trailer aside).
      const again = encode(frame, frame.msg);
      const body = frame.auth ? input.subarray(0, input.length - AUTH_TRAILER_BYTES) : input;
      if (frame.auth) again[4] = (again[4] as number) | FrameFlag.Auth;
      if (!Buffer.from(again).equals(Buffer.from(body))) {
        throw new Error(
          `${frame.msg._tag} is not canonical: seed ${SEED} iteration ${i} input ${toHex(input)} re-encodes as ${toHex(again)}`,
        );
      }
    }
    // the generator must reach the body decoders and produce valid frames too, or it proves little
    expect(decoded).toBeGreaterThan(N / 100);
    expect(outcomes.size).toBeGreaterThanOrEqual(6);
    console.log(`fuzz seed ${SEED}: ${decoded} decoded,`, Object.fromEntries(outcomes));
  });
});
