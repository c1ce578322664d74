/**
 * `BatchSocket`: a UDP socket that moves datagrams in batches, over the optional native addon
 * `native/udp_batch.c` (Linux; built at install by `scripts/build-native.mjs`).
 *
 * node:dgram costs a JS callback, a Buffer, an address object and a syscall per datagram, and on
 * loopback the send syscall also carries the receiver's whole stack. Here one readable event
 * hands over every datagram waiting (recvmmsg; with UDP_GRO the kernel may pass a burst of one
 * sender as one record, cut here), and the datagrams sent during one JS turn leave together after
 * it (a microtask): one sendmmsg, in which a run of equal-sized datagrams to one destination is one
 * UDP_SEGMENT (GSO) message — on the wire still separate datagrams, exactly as if sent one by one.
 * Nothing waits for a batch to fill: a lone datagram leaves at the end of the turn it was sent in.
 *
 * The send queue is bounded (`maxQueued`); beyond it, and for datagrams the kernel refuses, the
 * socket counts and drops, as UDP does. `BatchSocket.available` tells whether the addon loaded.
 */
import { lookup as dnsLookup } from "node:dns";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import { constants } from "node:os";

interface Binding {
  readonly metaLength: number;
  readonly maxSend: number;
  open(
    family: 4 | 6,
    address: string,
    port: number,
    recvBuf: number,
    sendBuf: number,
    meta: Uint32Array,
    onBatch: (data: Buffer, count: number, addrs: string[]) => void,
    onWritable: () => void,
  ): unknown;
  address(h: unknown): [string, number];
  send(
    h: unknown,
    datas: Uint8Array[],
    addrs: string[],
    ports: number[],
    count: number,
    errs: number[],
  ): number;
  wantWritable(h: unknown): void;
  setOption(h: unknown, name: string, value: number | string): void;
  info(h: unknown): { gro: boolean; gso: boolean };
  close(h: unknown): void;
}

let binding: Binding | undefined;
let loadError: string | undefined;
try {
  if (process.platform !== "linux") throw new Error("batched UDP I/O is Linux only");
  binding = createRequire(import.meta.url)("../native/build/udp_batch.node") as Binding;
} catch (e) {
  loadError = (e as Error).message.split("\n")[0];
}

/** A datagram arrived: `data` is the datagram alone (a view the receiver may keep). */
export type DatagramHandler = (data: Buffer, address: string, port: number) => void;

export interface BatchSocketStats {
  /** JS callbacks that delivered received datagrams (each one readable batch). */
  rxBatches: number;
  /** Received records the kernel had coalesced (UDP_GRO) and this socket cut apart. */
  rxCoalesced: number;
  /** Send calls (each one sendmmsg or more if the socket filled). */
  txBatches: number;
  /** Datagrams dropped because the send queue was full while the socket was. */
  txQueueDrops: number;
}

export interface BatchSocketOptions {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  readonly recvBufferBytes: number;
  readonly sendBufferBytes: number;
  /** Datagrams waiting while the kernel's buffer is full (default 4096). */
  readonly maxQueued?: number;
  /** Counters to add to (default: a fresh object). */
  readonly stats?: BatchSocketStats;
  readonly onDatagram: DatagramHandler;
  /** A datagram the kernel refused (the errno name) or a send dropped for a full queue. */
  readonly onSendError: (err: string) => void;
}

export class BatchSocket {
  /** Whether the native addon loaded (else `open` throws and callers use node:dgram). */
  static get available(): boolean {
    return binding !== undefined;
  }

  /** Why the addon did not load (undefined when it did). */
  static get unavailableReason(): string | undefined {
    return loadError;
  }

  readonly stats: BatchSocketStats;
  readonly #b: Binding;
  readonly #h: unknown;
  readonly #meta: Uint32Array;
  readonly #maxQueued: number;
  readonly #onDatagram: DatagramHandler;
  readonly #onSendError: (err: string) => void;
  #datas: Uint8Array[] = [];
  #addrs: string[] = [];
  #ports: number[] = [];
  #queued = 0;
  #flushQueued = false;
  #waitingWritable = false;
  #closed = false;
  readonly #errs: number[] = [];

  private constructor(b: Binding, opts: BatchSocketOptions) {
    this.#b = b;
    this.stats = opts.stats ?? { rxBatches: 0, rxCoalesced: 0, txBatches: 0, txQueueDrops: 0 };
    this.#meta = new Uint32Array(b.metaLength);
    this.#maxQueued = opts.maxQueued ?? 4096;
    this.#onDatagram = opts.onDatagram;
    this.#onSendError = opts.onSendError;
    this.#h = b.open(
      opts.family,
      opts.address,
      opts.port,
      opts.recvBufferBytes,
      opts.sendBufferBytes,
      this.#meta,
      this.#onBatch,
      this.#onWritable,
    );
  }

  /** Opens and binds; throws when the addon is missing or the bind fails (`errno` on the error). */
  static open(opts: BatchSocketOptions): BatchSocket {
    if (binding === undefined) throw new Error(`batched UDP I/O unavailable: ${loadError}`);
    return new BatchSocket(binding, opts);
  }

  address(): { address: string; port: number } {
    const [address, port] = this.#b.address(this.#h);
    return { address, port };
  }

  /** Whether the kernel coalesces received bursts (UDP_GRO) and segments sent runs (UDP_SEGMENT). */
  info(): { gro: boolean; gso: boolean } {
    return this.#b.info(this.#h);
  }

  setBroadcast(on: boolean): void {
    this.#b.setOption(this.#h, "broadcast", on ? 1 : 0);
  }

  setMulticastTTL(ttl: number): void {
    this.#b.setOption(this.#h, "multicastTtl", ttl);
  }

  setMulticastInterface(iface: string): void {
    this.#b.setOption(this.#h, "multicastIf", iface);
  }

  setMulticastLoopback(on: boolean): void {
    this.#b.setOption(this.#h, "multicastLoop", on ? 1 : 0);
  }

  /**
   * Queues a datagram; it leaves at the end of this JS turn with the others. `data` must not change
   * until then. A host name is resolved first (IP literals are taken as they are).
   */
  send(data: Uint8Array, port: number, address: string): void {
    if (this.#closed) return;
    if (isIP(address) === 0) {
      dnsLookup(address, (err, a) => {
        if (err !== null) this.#onSendError(err.code ?? err.message);
        else this.send(data, port, a);
      });
      return;
    }
    if (this.#queued >= this.#maxQueued) {
      this.stats.txQueueDrops++;
      this.#onSendError("ENOBUFS");
      return;
    }
    const i = this.#queued++;
    this.#datas[i] = data;
    this.#addrs[i] = address;
    this.#ports[i] = port;
    if (!this.#flushQueued && !this.#waitingWritable) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    if (this.#closed) return;
    let done = 0;
    while (done < this.#queued) {
      const n = Math.min(this.#queued - done, this.#b.maxSend);
      const datas = done === 0 ? this.#datas : this.#datas.slice(done, done + n);
      const addrs = done === 0 ? this.#addrs : this.#addrs.slice(done, done + n);
      const ports = done === 0 ? this.#ports : this.#ports.slice(done, done + n);
      this.#errs.length = 0;
      this.stats.txBatches++;
      const took = this.#b.send(this.#h, datas, addrs, ports, n, this.#errs);
      for (let k = 1; k < this.#errs.length; k += 2) this.#onSendError(errnoName(this.#errs[k] as number));
      done += took;
      if (took < n) {
        this.#waitingWritable = true;
        this.#b.wantWritable(this.#h);
        break;
      }
    }
    // keep what did not fit, in order; drop references to what left
    const rest = this.#queued - done;
    if (rest > 0 && done > 0) {
      this.#datas.copyWithin(0, done, this.#queued);
      this.#addrs.copyWithin(0, done, this.#queued);
      this.#ports.copyWithin(0, done, this.#queued);
    }
    this.#datas.fill(undefined as never, rest, this.#queued);
    this.#queued = rest;
  };

  readonly #onWritable = (): void => {
    this.#waitingWritable = false;
    if (this.#queued > 0 && !this.#flushQueued) this.#flush();
  };

  readonly #onBatch = (data: Buffer, count: number, addrs: string[]): void => {
    this.stats.rxBatches++;
    const m = this.#meta;
    for (let i = 0; i < count && !this.#closed; i++) {
      const o = i * 5;
      const off = m[o] as number;
      const len = m[o + 1] as number;
      const seg = m[o + 2] as number;
      const port = m[o + 3] as number;
      const address = addrs[m[o + 4] as number] as string;
      if (seg === 0 || seg >= len) {
        this.#onDatagram(data.subarray(off, off + len), address, port);
        continue;
      }
      this.stats.rxCoalesced++;
      for (let p = off, end = off + len; p < end && !this.#closed; p += seg)
        this.#onDatagram(data.subarray(p, Math.min(p + seg, end)), address, port);
    }
  };

  /** Stops receiving and sending at once (queued datagrams are dropped). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#datas = [];
    this.#addrs = [];
    this.#ports = [];
    this.#queued = 0;
    this.#b.close(this.#h);
  }
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** `EADDRINUSE` for 98 (Linux numbering; `errno N` for an unknown one). */
export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}
