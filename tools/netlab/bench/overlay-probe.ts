/**
 * One-way latency probe through a spines-node overlay, driven from one process through two client
 * connections (the first and the last daemon), so one clock times both ends. Messages: u32 sequence,
 * u64 `process.hrtime` nanoseconds, padded to `size` bytes. A stream carries them back to back
 * (fixed-size framing); datagrams carry one each. Reused by the namespace benchmark (`latency`) and
 * by loopback benchmarks.
 */
import { LinkType, SpinesClient } from "@spines-ts/spines-node/client";

export type OverlayProbeMode = "stream" | "datagram";

export interface OverlayProbeOptions {
  /** Client socket of the sending daemon and of the receiving daemon. */
  txSocket: string;
  rxSocket: string;
  /** Node id of the receiving daemon. */
  dstNode: number;
  mode: OverlayProbeMode;
  /** Link type of the session: reliable (hop-by-hop recovery) or best-effort (end-to-end only). */
  link: "reliable" | "best-effort";
  rate: number;
  durationMs: number;
  size?: number;
  /** Wait this long after the last send for stragglers (default 3000 ms). */
  drainMs?: number;
  port?: number;
  /** Called after the drain, before the sessions close (e.g. to read the daemons' counters). */
  beforeClose?: () => Promise<unknown>;
}

export interface OverlayProbeResult {
  sent: number;
  /** Latencies in arrival order (ms). */
  latMs: number[];
  /** Messages the client could not hand to the daemon (back-pressure) by the end. */
  blocked: number;
  /** Sequence number and send time (ms, hrtime) of each entry of latMs. */
  seqs: number[];
  sentAtMs: number[];
  /** What `beforeClose` returned (e.g. the sending daemon's session counters). */
  extra?: unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function overlayProbe(o: OverlayProbeOptions): Promise<OverlayProbeResult> {
  const size = Math.max(12, o.size ?? 1000);
  const port = o.port ?? 6400;
  const total = Math.round((o.rate * o.durationMs) / 1000);
  const link = o.link === "reliable" ? LinkType.Reliable : LinkType.BestEffort;
  const rx = await SpinesClient.connect({ path: o.rxSocket });
  const tx = await SpinesClient.connect({ path: o.txSocket });
  rx.on("error", () => {});
  tx.on("error", () => {});
  try {
    const latMs: number[] = [];
    const seqs: number[] = [];
    const sentAtMs: number[] = [];
    const seen = new Uint8Array(total);
    const record = (b: Uint8Array, off: number) => {
      const v = Buffer.from(b.buffer, b.byteOffset + off, 12);
      const seq = v.readUInt32BE(0);
      if (seq >= total || seen[seq] === 1) return;
      seen[seq] = 1;
      const sentNs = v.readBigUInt64BE(4);
      latMs.push(Number(process.hrtime.bigint() - sentNs) / 1e6);
      seqs.push(seq);
      sentAtMs.push(Number(sentNs) / 1e6);
    };
    let send: (b: Buffer) => boolean;
    const closers: (() => Promise<void> | void)[] = [];
    if (o.mode === "stream") {
      const l = await rx.listen(port, { link });
      const [s, peer] = await Promise.all([tx.connect(o.dstNode, port, { link }), l.accept()]);
      s.on("error", () => {});
      peer.on("error", () => {});
      let buf: Buffer = Buffer.alloc(0);
      peer.on("data", (d: Buffer) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        let off = 0;
        while (buf.length - off >= size) {
          record(buf, off);
          off += size;
        }
        buf = buf.subarray(off);
      });
      send = (b) => s.write(b);
      closers.push(() => {
        s.destroy();
        peer.destroy();
      });
      closers.push(() => l.close());
    } else {
      const drx = await rx.openDatagram(port, { link });
      const dtx = await tx.openDatagram(port + 1, { link });
      drx.on("message", (...args: unknown[]) => {
        const data = args.find((a) => a instanceof Uint8Array) as Uint8Array | undefined;
        if (data !== undefined && data.length >= 12) record(data, 0);
      });
      send = (b) => dtx.send(o.dstNode, port, b);
      closers.push(() => drx.close());
      closers.push(() => dtx.close());
    }
    let sent = 0;
    let blocked = 0;
    const t0 = performance.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * o.rate) / 1000) + 1);
      while (sent < due) {
        const b = Buffer.alloc(size);
        b.writeUInt32BE(sent, 0);
        b.writeBigUInt64BE(process.hrtime.bigint(), 4);
        if (!send(b)) blocked++;
        sent++;
      }
      await sleep(1);
    }
    const end = performance.now() + (o.drainMs ?? 3000);
    while (latMs.length < total && performance.now() < end) await sleep(20);
    const extra = o.beforeClose === undefined ? undefined : await o.beforeClose().catch(() => undefined);
    for (const c of closers) {
      try {
        await c();
      } catch {
        // closing after the run: ignore
      }
    }
    return { sent, latMs, blocked, seqs, sentAtMs, ...(extra !== undefined ? { extra } : {}) };
  } finally {
    rx.close();
    tx.close();
  }
}
