/**
 * `pnpm bench wire [--quick]`: encode and decode throughput for a 1 KB Datagram (1,000-byte payload,
 * a 1,030-byte frame), beside two baselines measured in the same run on the same bytes:
 * `Buffer.copy` into a preallocated buffer, and `new Uint8Array(n).set(src)` (allocate and copy, the
 * least any encoder that returns a fresh array must do). Each operation is timed in several
 * interleaved rounds and the median is reported.
 */
import { opsPerSec, runBench, stats } from "@spines-ts/bench";
import { sign, signInto, verify } from "../src/auth.ts";
import { type Datagram, DestKind, decode, encode, encodeInto, Writer } from "../src/index.ts";

await runBench("wire", (ctx) => {
  const roundMs = ctx.quick ? 150 : 1000;
  const rounds = ctx.quick ? 3 : 7;
  const payload = new Uint8Array(1000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
  const src = { sender: 7, incarnation: 0x1234abcd };
  const msg: Datagram = {
    _tag: "Datagram",
    header: { src: 1, srcPort: 5000, dst: 2, dstPort: 6000, dstKind: DestKind.Node, ttl: 16 },
    payload,
  };
  const frame = encode(src, msg);
  const n = frame.length;
  const frameBuf = Buffer.from(frame);
  const dstBuf = Buffer.alloc(n);
  const w = new Writer(2048);
  const key = new Uint8Array(32).fill(0x5a);
  const keys = new Map([[1, key]]);
  const signed = sign(frame, 1, key, 1);
  let sink = 0;
  let counter = 1;

  const ops: [string, () => void][] = [
    [
      "baseline: Buffer.copy (preallocated target)",
      () => {
        sink += frameBuf.copy(dstBuf);
      },
    ],
    [
      "baseline: new Uint8Array(n).set(src)",
      () => {
        const b = new Uint8Array(n);
        b.set(frame);
        sink += b.length;
      },
    ],
    [
      "encode (fresh Uint8Array)",
      () => {
        sink += encode(src, msg).length;
      },
    ],
    [
      "encodeInto (reused Writer)",
      () => {
        sink += encodeInto(w, src, msg).length;
      },
    ],
    [
      "decode",
      () => {
        sink += decode(frame).type;
      },
    ],
    [
      "encode + decode",
      () => {
        sink += decode(encode(src, msg)).type;
      },
    ],
    [
      "encodeInto + decode",
      () => {
        sink += decode(encodeInto(w, src, msg)).type;
      },
    ],
    [
      "encodeInto + signInto (HMAC-SHA-256)",
      () => {
        encodeInto(w, src, msg);
        sink += signInto(w, 1, key, ++counter).length;
      },
    ],
    [
      "verify (HMAC-SHA-256)",
      () => {
        sink += verify(signed, keys).ok ? 1 : 0;
      },
    ],
  ];

  const samples = new Map<string, number[]>(ops.map(([name]) => [name, []]));
  const total = rounds * ops.length;
  let done = 0;
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of ops) {
      samples.get(name)?.push(opsPerSec(fn, roundMs, 200));
      ctx.progress(++done / total, name);
    }
  }
  const median = (name: string): number => stats(samples.get(name) ?? []).p50;
  const copy = median(ops[0]?.[0] ?? "");
  const alloc = median(ops[1]?.[0] ?? "");
  const rows = ops.map(([name]) => {
    const o = median(name);
    const s = samples.get(name) ?? [];
    const spread = ((Math.max(...s) - Math.min(...s)) / o) * 100;
    return [name, Math.round(o), 1e9 / o, (o * n) / 1e6, copy / o, alloc / o, `${spread.toFixed(0)}%`];
  });
  const data = Object.fromEntries(
    ops.map(([name]) => [name, { opsPerSec: median(name), samples: samples.get(name) }]),
  );
  return {
    tables: [
      {
        title: `wire: 1 KB Datagram (${n}-byte frame), median of ${rounds} rounds x ${roundMs} ms`,
        columns: [
          "operation",
          "ops/s",
          "ns/op",
          "MB/s",
          "time vs Buffer.copy",
          "time vs alloc+set",
          "spread",
        ],
        rows,
        notes: [
          "time vs X = (ns/op of the row) / (ns/op of baseline X), measured in this run; lower is better.",
          "MB/s counts frame bytes (10^6 bytes). spread = (max - min) / median over the rounds.",
          `sink ${sink > 0 ? "ok" : "?"}`,
        ],
      },
    ],
    data: { frameBytes: n, roundMs, rounds, quick: ctx.quick, results: data },
  };
});
