/**
 * A live, checked overlay session: a stream from one daemon's client to a listener at another
 * daemon carrying a position-derived byte pattern, so the receiver checks every byte (nothing lost,
 * duplicated, altered or reordered) as it arrives. Also a sequence-numbered datagram flow.
 */
import { SpinesClient, type SpinesStream } from "@spines-ts/client";

/** The byte at stream offset `i` (a mix of the offset's bits; never periodic at small periods). */
export function patternByte(i: number, salt: number): number {
  const x = Math.imul((i ^ salt) >>> 0, 0x9e3779b1) >>> 0;
  return (x >>> 24) ^ ((i >>> 8) & 0xff);
}

export interface StreamReport {
  sentBytes: number;
  receivedBytes: number;
  /** Every received byte matched the pattern at its offset (no loss, duplication, reordering). */
  intact: boolean;
  firstMismatchAt: number | null;
  /** The receiver saw the end of the stream after all the bytes. */
  ended: boolean;
  errors: string[];
}

export interface CheckedStream {
  readonly report: () => StreamReport;
  /** Stops writing, ends the stream and waits (up to `timeoutMs`) for the receiver to see the end. */
  finish(timeoutMs: number): Promise<StreamReport>;
  close(): void;
}

/**
 * Opens a session from the daemon behind `fromSocket` to `toNode` (whose daemon's client socket is
 * `toSocket`) on `port`, and writes `bytesPerSec` of pattern (0: as fast as back-pressure allows).
 */
export async function startCheckedStream(opts: {
  fromSocket: string;
  toSocket: string;
  toNode: number;
  port: number;
  bytesPerSec: number;
  salt?: number;
}): Promise<CheckedStream> {
  const salt = opts.salt ?? 0x5eed;
  const rx = await SpinesClient.connect({ path: opts.toSocket });
  const tx = await SpinesClient.connect({ path: opts.fromSocket });
  const listener = await rx.listen(opts.port);
  const errors: string[] = [];
  let stream: SpinesStream | undefined;
  let incoming: SpinesStream | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      [stream, incoming] = await Promise.all([tx.connect(opts.toNode, opts.port), listener.accept()]);
      break;
    } catch (e) {
      if (attempt >= 50) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const s = stream as SpinesStream;
  const inc = incoming as SpinesStream;
  let sent = 0;
  let received = 0;
  let mismatch: number | null = null;
  let ended = false;
  s.on("error", (e) => errors.push(`sender: ${String(e)}`));
  inc.on("error", (e) => errors.push(`receiver: ${String(e)}`));
  rx.on("error", (e: unknown) => errors.push(`receiver client: ${String(e)}`));
  tx.on("error", (e: unknown) => errors.push(`sender client: ${String(e)}`));
  inc.on("data", (b: Buffer) => {
    if (mismatch === null) {
      for (let k = 0; k < b.length; k++) {
        if (b[k] !== patternByte(received + k, salt)) {
          mismatch = received + k;
          break;
        }
      }
    }
    received += b.length;
  });
  const endSeen = new Promise<void>((resolve) => inc.on("end", () => resolve()));
  void endSeen.then(() => {
    ended = true;
  });
  let stop = false;
  const CHUNK = 4096;
  const writer = (async () => {
    const t0 = performance.now();
    while (!stop) {
      if (opts.bytesPerSec > 0) {
        const due = ((performance.now() - t0) / 1000) * opts.bytesPerSec;
        if (sent >= due) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
      }
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let k = 0; k < CHUNK; k++) buf[k] = patternByte(sent + k, salt);
      sent += CHUNK;
      if (!s.write(buf)) await new Promise((r) => s.once("drain", r));
      else if (opts.bytesPerSec === 0) await new Promise((r) => setImmediate(r));
    }
  })().catch((e) => errors.push(`writer: ${String(e)}`));
  const report = (): StreamReport => ({
    sentBytes: sent,
    receivedBytes: received,
    intact: mismatch === null,
    firstMismatchAt: mismatch,
    ended,
    errors: [...errors],
  });
  return {
    report,
    async finish(timeoutMs) {
      stop = true;
      const deadline = new Promise((r) => setTimeout(r, timeoutMs));
      // a writer blocked on back-pressure of a stalled session would never return: bounded wait
      await Promise.race([writer, deadline]);
      s.end();
      await Promise.race([endSeen, deadline]);
      return report();
    },
    close() {
      stop = true;
      tx.close();
      rx.close();
    },
  };
}
