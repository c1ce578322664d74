/** The output bound of one local peer that sends requests but may not read the replies. */
import type { Socket } from "node:net";

/** A peer whose output queue reaches this many times its bound is disconnected at once. */
export const OVERFLOW_FACTOR = 4;

export interface SlowPeerOptions {
  /** Output bytes queued towards the peer at which its input stops being read. */
  readonly maxQueueBytes: number;
  /**
   * How long a paused peer has to drain its queue below `lowWaterBytes` (ms). A peer still above it
   * when the time is up is disconnected, however much it read meanwhile.
   */
  readonly stallMs: number;
  /** The queue a paused peer must get under within `stallMs` (default: half of `maxQueueBytes`). */
  readonly lowWaterBytes?: number;
  readonly pause: () => void;
  readonly resume: () => void;
  /** Called once when the peer is disconnected for not reading (before the socket is destroyed). */
  readonly onDisconnect: (reason: "stall" | "overflow") => void;
  /** Called each time the peer's input is paused for a full output queue. */
  readonly onPause: () => void;
}

/**
 * The output bound of one local peer (client or control connection). When `maxQueueBytes` or more
 * wait for the peer, its input is paused (no new requests, so no new replies) and one deadline is
 * set, `stallMs` away. The peer is resumed when its queue empties (`drain`), or when the deadline
 * finds it below the low-water mark; otherwise the deadline disconnects it. Progress short of the
 * low-water mark never extends the deadline: a peer whose kernel buffer takes a few bytes now and
 * then is still a peer that does not read. A queue that reaches four times the bound (only output
 * not caused by requests, such as stream data, can get there) disconnects at once. Disconnecting
 * destroys the socket, which frees everything queued for it.
 */
export class SlowPeerGuard {
  readonly #sock: Socket;
  readonly #o: SlowPeerOptions;
  readonly #lowWater: number;
  #paused = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;
  /** Output held outside the socket, as of the last `check`. */
  #extra = 0;

  constructor(sock: Socket, opts: SlowPeerOptions) {
    this.#sock = sock;
    this.#o = opts;
    this.#lowWater = Math.min(opts.lowWaterBytes ?? Math.floor(opts.maxQueueBytes / 2), opts.maxQueueBytes);
    sock.on("drain", () => this.#drained());
    sock.once("close", () => this.#stop());
  }

  /** True while the peer's input is paused for its output queue. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes waiting for the peer: in the socket, plus what the last `check` said was held outside. */
  get queuedBytes(): number {
    return this.#sock.writableLength + this.#extra;
  }

  /** Call after queueing output; `extra` is output held outside the socket (not yet written). */
  check(extra = 0): void {
    if (this.#done) return;
    this.#extra = extra;
    const q = this.queuedBytes;
    if (q >= OVERFLOW_FACTOR * this.#o.maxQueueBytes) {
      this.#disconnect("overflow");
      return;
    }
    if (q >= this.#o.maxQueueBytes && !this.#paused) {
      this.#paused = true;
      this.#o.onPause();
      this.#o.pause();
      this.#timer = setTimeout(() => this.#deadline(), this.#o.stallMs);
      this.#timer.unref();
    }
  }

  #deadline(): void {
    this.#timer = undefined;
    if (this.#done || !this.#paused) return;
    if (this.queuedBytes < this.#lowWater) this.#resume();
    else this.#disconnect("stall");
  }

  #drained(): void {
    if (!this.#paused || this.#done) return;
    if (this.queuedBytes >= this.#o.maxQueueBytes) return;
    this.#resume();
  }

  #resume(): void {
    this.#paused = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#o.resume();
  }

  #disconnect(reason: "stall" | "overflow"): void {
    if (this.#done) return;
    this.#stop();
    this.#o.onDisconnect(reason);
    this.#sock.destroy();
  }

  #stop(): void {
    this.#done = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
