/**
 * Round trips to a node's echo service (datagram port 7, answered by every spines-node daemon):
 * what spines-ping and spines-traceroute measure. A probe carries a magic, a sequence number and
 * its send time; the RTT is measured on this host's clock only.
 */
import {
  ClientErrorCode,
  type ClientProtocolError,
  ECHO_PORT,
  type SpinesClient,
  type SpinesDatagramSocket,
} from "@spines-ts/client";
import { wallMs } from "./cli.ts";

const MAGIC = 0x53504e47; // "SPNG"
export const MIN_PROBE_BYTES = 16;

export type ProbeResult =
  | { readonly ok: true; readonly rttMs: number; readonly bytes: number }
  | { readonly ok: false; readonly reason: "timeout" | "unreachable" };

export class Prober {
  readonly #sock: SpinesDatagramSocket;
  readonly #client: SpinesClient;
  readonly #pending = new Map<
    number,
    { node: number; resolve: (r: ProbeResult) => void; timer: NodeJS.Timeout }
  >();
  #seq = 0;

  private constructor(client: SpinesClient, sock: SpinesDatagramSocket) {
    this.#client = client;
    this.#sock = sock;
    sock.on("message", (msg: Buffer, src: { node: number; port: number }) => {
      if (src.port !== ECHO_PORT || msg.length < MIN_PROBE_BYTES || msg.readUInt32BE(0) !== MAGIC) return;
      const seq = msg.readUInt32BE(4);
      const p = this.#pending.get(seq);
      if (p === undefined || p.node !== src.node) return;
      this.#settle(seq, { ok: true, rttMs: wallMs() - msg.readDoubleBE(8), bytes: msg.length });
    });
    client.on("protocolError", (e: ClientProtocolError) => {
      // Errors for sends carry no id: an unreachable node fails the probes in flight.
      if (e.code !== ClientErrorCode.Unreachable) return;
      for (const seq of [...this.#pending.keys()]) this.#settle(seq, { ok: false, reason: "unreachable" });
    });
  }

  static async open(client: SpinesClient, link: 0 | 1 | 2): Promise<Prober> {
    return new Prober(client, await client.openDatagram(0, { link }));
  }

  #settle(seq: number, r: ProbeResult): void {
    const p = this.#pending.get(seq);
    if (p === undefined) return;
    this.#pending.delete(seq);
    clearTimeout(p.timer);
    p.resolve(r);
  }

  /** One probe of `size` bytes to `node`; resolves with its RTT, or why there is none. */
  probe(node: number, size: number, timeoutMs: number): Promise<ProbeResult> {
    this.#seq = (this.#seq + 1) >>> 0;
    const seq = this.#seq;
    const b = Buffer.alloc(Math.max(MIN_PROBE_BYTES, size));
    b.writeUInt32BE(MAGIC, 0);
    b.writeUInt32BE(seq, 4);
    b.writeDoubleBE(wallMs(), 8);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#settle(seq, { ok: false, reason: "timeout" }), timeoutMs);
      this.#pending.set(seq, { node, resolve, timer });
      try {
        this.#sock.send(node, ECHO_PORT, b);
      } catch {
        this.#settle(seq, { ok: false, reason: "unreachable" });
      }
    });
  }

  get lastSeq(): number {
    return this.#seq;
  }

  close(): void {
    for (const seq of [...this.#pending.keys()]) this.#settle(seq, { ok: false, reason: "timeout" });
    this.#client.close();
  }
}

/** min/avg/max/mdev of RTTs (null when empty). */
export function rttStats(
  xs: readonly number[],
): { min: number; avg: number; max: number; mdev: number } | null {
  if (xs.length === 0) return null;
  const avg = xs.reduce((a, b) => a + b, 0) / xs.length;
  const mdev = Math.sqrt(xs.reduce((a, b) => a + (b - avg) ** 2, 0) / xs.length);
  return { min: Math.min(...xs), avg, max: Math.max(...xs), mdev };
}
