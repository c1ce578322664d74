/**
 * In-process fuzz of every decoder that reads bytes from the network or a local client, with the
 * same seeded mutations `pnpm fuzz` sends: the wire frame decoder (`decode`, `decodeHeader`), every
 * registered message body decoder reached through `decode`, the session payload form
 * (`decodeSessionPayload`), the overlay header, `verify`, the membership core's `receive` (must
 * never throw: bad packets are counted), and the client protocol's `FrameDecoder`/`FrameReader`.
 * Only the documented typed errors may escape. Replay a failure with FUZZ_SEED=<seed>.
 */
import { ClientProtocolError, FrameDecoder, FrameReader } from "@spines-ts/client/protocol";
import { MembershipCore } from "@spines-ts/membership";
import { Rng } from "@spines-ts/primitives";
import {
  decode,
  decodeHeader,
  decodeSessionPayload,
  HEADER_BYTES,
  Reader,
  readOverlayHeader,
  registry,
  WireError,
} from "@spines-ts/wire";
import { verify } from "@spines-ts/wire/auth";
import { describe, expect, it } from "vitest";
import { loadCorpus } from "../src/corpus.ts";
import { MUTATION_KINDS, type MutationContext, mutate } from "../src/mutate.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 0xf022_0001);
const N = Number(process.env.FUZZ_N ?? 100_000);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function inputs(seed: number, n: number): Generator<{ i: number; kind: string; bytes: Uint8Array }> {
  const corpus = loadCorpus();
  const types = registry.specs.map((s) => s.type);
  const rng = new Rng(seed);
  const history: Uint8Array[] = [];
  return (function* () {
    for (let i = 0; i < n; i++) {
      const kind = MUTATION_KINDS[i % MUTATION_KINDS.length] as (typeof MUTATION_KINDS)[number];
      const ctx: MutationContext = {
        rng,
        pool: corpus.valid,
        all: corpus.valid,
        invalid: corpus.invalid,
        types,
        sender: rng.chance(0.5) ? undefined : rng.uint32(),
        history,
      };
      const bytes = mutate(kind, ctx);
      if (history.length < 64) history.push(bytes);
      yield { i, kind, bytes };
    }
  })();
}

/** Runs `f`; anything thrown that is not `allowed` fails with the seed, iteration and input. */
function only(allowed: (e: unknown) => boolean, f: () => void, where: () => string): "ok" | "typed-error" {
  try {
    f();
    return "ok";
  } catch (e) {
    if (!allowed(e)) {
      throw new Error(`threw ${(e as Error)?.name ?? typeof e} (${String(e)}) — ${where()}`, { cause: e });
    }
    return "typed-error";
  }
}

const isWireError = (e: unknown) => e instanceof WireError && e.cause === undefined;

describe(`decoder fuzz (seed ${SEED.toString(16)})`, () => {
  it(`${N.toLocaleString("en-US")} mutated golden frames: decode and decodeHeader throw only WireError`, () => {
    let decoded = 0;
    let rejected = 0;
    const tags = new Set<string>();
    for (const { i, kind, bytes } of inputs(SEED, N)) {
      const where = () => `seed ${SEED} iteration ${i} kind ${kind} input ${hex(bytes)}`;
      only(isWireError, () => decodeHeader(bytes), where);
      const r = only(
        isWireError,
        () => {
          tags.add(decode(bytes).msg._tag);
        },
        where,
      );
      if (r === "ok") decoded++;
      else rejected++;
    }
    // the mutations must reach the body decoders and also produce valid frames, or this proves little
    expect(decoded).toBeGreaterThan(N / 50);
    expect(rejected).toBeGreaterThan(N / 2);
    expect(tags.size).toBeGreaterThanOrEqual(Math.min(20, registry.specs.length));
  });

  it("every registered body decoder, fed every other message's body and random bytes, throws only WireError", () => {
    const rng = new Rng(SEED ^ 0x55);
    const corpus = loadCorpus();
    const bodies = corpus.valid.map((s) => s.bytes.subarray(HEADER_BYTES));
    let n = 0;
    for (const spec of registry.specs) {
      for (let k = 0; k < 2000; k++) {
        const body = rng.chance(0.5) ? rng.pick(bodies).slice() : rng.bytes(rng.int(200));
        if (body.length > 0 && rng.chance(0.5)) body[rng.int(body.length)] = rng.int(256);
        const where = () => `${spec.tag} body ${hex(body)} (seed ${SEED})`;
        // a body decoder may throw WireError itself; decode() wraps anything else, which is a bug
        only(
          (e) => e instanceof WireError,
          () => spec.decode(new Reader(body)),
          where,
        );
        n++;
      }
    }
    expect(n).toBe(registry.specs.length * 2000);
  });

  it("decodeSessionPayload, readOverlayHeader and verify throw only WireError", () => {
    const rng = new Rng(SEED ^ 0x77);
    const corpus = loadCorpus();
    const header = { src: 1, srcPort: 5000, dst: 3, dstPort: 5000, dstKind: 0 as const, ttl: 16 };
    const keys = new Map([[1, new Uint8Array(32).fill(7)]]);
    let ok = 0;
    for (const { i, kind, bytes } of inputs(SEED ^ 0x77, 50_000)) {
      const where = () => `seed ${SEED ^ 0x77} iteration ${i} kind ${kind} input ${hex(bytes)}`;
      // session payloads: the body of a mutated frame after its first bytes, as a payload
      const payload = bytes.subarray(Math.min(bytes.length, rng.int(HEADER_BYTES + 15)));
      if (only(isWireError, () => decodeSessionPayload(header, payload), where) === "ok") ok++;
      only(
        isWireError,
        () => readOverlayHeader(new Reader(bytes, Math.min(bytes.length, HEADER_BYTES))),
        where,
      );
      only(
        (e) => e instanceof WireError,
        () => verify(bytes, keys),
        where,
      );
    }
    // the session payloads in the golden session frames do decode
    for (const s of corpus.byFamily.get("session") ?? []) {
      const f = decode(s.bytes);
      expect(f.msg._tag).toMatch(/^Session/);
    }
    expect(ok).toBeGreaterThan(0);
  });

  it("the membership core's receive never throws on mutated frames (it counts them)", () => {
    const core = new MembershipCore({ id: 1, incarnation: 77, group: "web", peers: [2, 3] });
    let now = 1000;
    core.join(now);
    let n = 0;
    for (const { i, kind, bytes } of inputs(SEED ^ 0x99, 50_000)) {
      const from = i % 3 === 0 ? 9 : 2 + (i % 2);
      only(
        () => false,
        () => {
          core.receive(from, bytes, now);
          if (i % 100 === 0) {
            now += 50;
            core.handleTimeout(now);
          }
          core.takeTransmits();
          core.takeEvents();
        },
        () => `seed ${SEED ^ 0x99} iteration ${i} kind ${kind} from ${from} input ${hex(bytes)}`,
      );
      n++;
    }
    expect(n).toBe(50_000);
    expect(core.stats.badPackets).toBeGreaterThan(1000);
  });

  it("the client protocol's FrameDecoder and FrameReader throw only ClientProtocolError", () => {
    const rng = new Rng(SEED ^ 0x33);
    let frames = 0;
    for (let i = 0; i < 20_000; i++) {
      const dec = new FrameDecoder(1 << 16);
      const chunks = 1 + rng.int(4);
      for (let c = 0; c < chunks; c++) {
        const chunk = rng.bytes(rng.int(64));
        // plausible length prefixes so that frames complete
        if (chunk.length >= 4 && rng.chance(0.7)) {
          chunk[0] = 0;
          chunk[1] = 0;
          chunk[2] = 0;
          chunk[3] = rng.int(chunk.length);
        }
        const where = () => `seed ${SEED ^ 0x33} iteration ${i} chunk ${hex(chunk)}`;
        let out: Uint8Array[] = [];
        const r = only(
          (e) => e instanceof ClientProtocolError,
          () => {
            out = dec.push(chunk);
          },
          where,
        );
        if (r === "typed-error") break;
        for (const f of out) {
          frames++;
          const fr = new FrameReader(f);
          only(
            (e) => e instanceof ClientProtocolError,
            () => {
              for (let k = 0; k < 8; k++) {
                const op = rng.int(4);
                if (op === 0) fr.u8();
                else if (op === 1) fr.u16();
                else if (op === 2) fr.u32();
                else fr.rest();
              }
            },
            where,
          );
        }
        expect(dec.buffered).toBeLessThanOrEqual((1 << 16) + 4);
      }
    }
    expect(frames).toBeGreaterThan(1000);
  });
});
