/**
 * Timestamped message probes for one-way latency across namespaces. All namespaces share the
 * machine's CLOCK_MONOTONIC (`process.hrtime`), so receive time − send time is the one-way latency.
 * The sender and receiver are small plain-JavaScript programs run with `node -e` inside a host's
 * namespace (no TypeScript loader: they start fast). Messages: u32 sequence, u64 send time (ns),
 * padded to `size` bytes; TCP frames them back to back (fixed size).
 */
import type { Testbed } from "./testbed.ts";

/** Receiver: prints one JSON line {received, latMs[]} (latencies in arrival order, in ms). */
export const RECEIVER_JS = String.raw`
const [mode, port, size, stopAfterMs, expect] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
const lat = [];
const seen = new Set();
const t0 = process.hrtime.bigint();
const onMsg = (b, off) => {
  const seq = b.readUInt32BE(off);
  const sent = b.readBigUInt64BE(off + 4);
  if (mode === "udp") { if (seen.has(seq)) return; seen.add(seq); }
  lat.push(Math.round(Number(process.hrtime.bigint() - sent) / 1000) / 1000);
  if (lat.length >= expect) finish();
};
let done = false;
function finish() {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify({ received: lat.length, latMs: lat }) + "\n", () => process.exit(0));
}
setTimeout(finish, stopAfterMs);
if (mode === "udp") {
  const s = require("dgram").createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  s.on("message", (b) => { if (b.length >= 12) onMsg(b, 0); });
  s.bind(port, "0.0.0.0", () => console.error("ready"));
} else {
  const srv = require("net").createServer((c) => {
    c.setNoDelay(true);
    let buf = Buffer.alloc(0);
    c.on("data", (d) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      let off = 0;
      while (buf.length - off >= size) { onMsg(buf, off); off += size; }
      buf = buf.subarray(off);
    });
    c.on("error", () => {});
  });
  srv.listen(port, "0.0.0.0", () => console.error("ready"));
}
`;

/** Sender: sends `rate` messages/s for `durationMs`; prints {sent, behind} ("behind": TCP could not take them). */
export const SENDER_JS = String.raw`
const [mode, host, port, size, rate, durationMs, drainMs] = process.argv.slice(1).map((v, i) => (i === 0 || i === 1 ? v : Number(v)));
const total = Math.round((rate * durationMs) / 1000);
let sent = 0;
let maxBacklogBytes = 0;
const msg = () => {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(sent, 0);
  b.writeBigUInt64BE(process.hrtime.bigint(), 4);
  return b;
};
let send;
let sock;
const start = (fn) => {
  const t0 = performance.now();
  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    while (sent < due) { fn(msg()); sent++; }
    if (sent < total) setTimeout(tick, 1);
    else {
      const end = performance.now() + drainMs;
      const wait = () => {
        if ((sock.writableLength ?? 0) > 0 && performance.now() < end) { setTimeout(wait, 20); return; }
        const unsentBytes = sock.writableLength ?? 0;
        process.stdout.write(JSON.stringify({ sent, maxBacklogBytes, unsentBytes }) + "\n", () => process.exit(0));
      };
      setTimeout(wait, 200);
    }
  };
  tick();
};
if (mode === "udp") {
  sock = require("dgram").createSocket({ type: "udp4", sendBufferSize: 4 << 20 });
  start((b) => sock.send(b, port, host));
} else {
  sock = require("net").connect(port, host, () => {
    sock.setNoDelay(true);
    start((b) => { sock.write(b); maxBacklogBytes = Math.max(maxBacklogBytes, sock.writableLength); });
  });
  sock.on("error", (e) => { console.error(String(e)); process.exit(1); });
}
`;

export interface ProbeOptions {
  mode: "udp" | "tcp";
  from: string;
  to: string;
  /** Address of `to` that `from` sends to. */
  address: string;
  port?: number;
  size?: number;
  rate: number;
  durationMs: number;
  /** How long the receiver waits after the sender's last message (default 3000 ms). */
  drainMs?: number;
}

export interface ProbeResult {
  sent: number;
  received: number;
  /** One-way latencies in arrival order (ms). */
  latMs: number[];
  /** Largest amount of data waiting in the sender's socket (TCP), bytes. */
  maxBacklogBytes: number;
  /** Bytes TCP had not taken when the sender gave up (the offered rate was more than TCP carried). */
  unsentBytes: number;
  /** Messages the sender was asked to send (rate × duration). */
  expected: number;
  /** The sender's stderr and exit code when it did not finish cleanly. */
  senderError?: string;
}

/** Runs a one-way latency probe between two hosts of a testbed. */
export async function probe(tb: Testbed, o: ProbeOptions): Promise<ProbeResult> {
  const size = Math.max(12, o.size ?? 1000);
  const port = o.port ?? 7400;
  const total = Math.round((o.rate * o.durationMs) / 1000);
  const stopAfter = o.durationMs + (o.drainMs ?? 3000) + 2000;
  const rx = tb.spawn(
    o.to,
    [
      process.execPath,
      "-e",
      RECEIVER_JS,
      o.mode,
      String(port),
      String(size),
      String(stopAfter),
      String(total),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  rx.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const rxDone = new Promise<void>((r) => rx.once("exit", () => r()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("probe receiver did not start")), 20_000);
    rx.stderr?.once("data", () => {
      clearTimeout(t);
      resolve();
    });
  });
  const tx = await tb.exec(
    o.from,
    [
      process.execPath,
      "-e",
      SENDER_JS,
      o.mode,
      o.address,
      String(port),
      String(size),
      String(o.rate),
      String(o.durationMs),
      String(o.drainMs ?? 3000),
    ],
    { timeoutMs: o.durationMs + 60_000 },
  );
  await rxDone;
  const s = JSON.parse(tx.stdout.trim().split("\n").pop() || "{}") as {
    sent?: number;
    maxBacklogBytes?: number;
    unsentBytes?: number;
  };
  const r = JSON.parse(out.trim().split("\n").pop() || "{}") as { received?: number; latMs?: number[] };
  const senderError = tx.code === 0 ? undefined : `sender exit ${tx.code}: ${tx.stderr.trim().slice(0, 300)}`;
  return {
    ...(senderError === undefined ? {} : { senderError }),
    expected: total,
    sent: s.sent ?? total,
    received: r.received ?? 0,
    latMs: r.latMs ?? [],
    maxBacklogBytes: s.maxBacklogBytes ?? 0,
    unsentBytes: s.unsentBytes ?? 0,
  };
}
