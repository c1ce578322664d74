import type { FlowKey } from "@spines-ts/congestion";
import { CoreDriver, type Host, type NodeId } from "@spines-ts/primitives";
import {
  blankLinkDataFrame,
  decode,
  decodeLinkDataInto,
  type Frame,
  type LinkChannel,
  type OverlayHeader,
  WireError,
} from "@spines-ts/wire";
import type { LinkConfig } from "./config.ts";
import { Link } from "./link.ts";
import { type Delivery, type LinkEvent, SendResult } from "./types.ts";

export interface LinkDriverOptions {
  /** Defaults for every neighbour's link. */
  readonly config?: Partial<LinkConfig>;
  /** Our incarnation; default: a random non-zero 32-bit id from `host.rng`. */
  readonly incarnation?: number;
  /** How frames leave; default `host.send(peer, bytes)` (override to tunnel through a router in tests). */
  readonly transmit?: (peer: NodeId, bytes: Uint8Array) => void;
  /** Link events (up, down, restart, writable, metrics). */
  readonly onEvent?: (peer: NodeId, e: LinkEvent) => void;
  /**
   * A received packet. Return true when taken; false leaves it held by the link (its receive credit
   * shrinks, which pushes back on the neighbour) until `offerDeliveries` is called again.
   * Default: take everything and drop it.
   */
  readonly onDelivery?: (peer: NodeId, d: Delivery) => boolean;
  /** Frames that are not link messages (routing, sessions...), after decoding. */
  readonly onOtherFrame?: (from: NodeId, f: Frame) => void;
}

interface Entry {
  readonly link: Link;
  readonly driver: CoreDriver;
}

/** `onDelivery` bound to one neighbour, made once per link (not per drain). */
type Take = (d: Delivery) => boolean;
const takeAll: Take = () => true;

const LINK_TAGS = new Set(["Hello", "LinkData", "LinkAck", "RealtimeNack"]);

/**
 * Runs one `Link` core per neighbour on a `Host`: decodes incoming datagrams and routes them by
 * sender, and drives each link with the shared `CoreDriver` (docs/drivers.md): after every input
 * its frames are sent and its deliveries and events passed to the owner, and one host timer per
 * link stays armed at its `nextDeadline()`. The simulator and the daemon both use this.
 */
export class LinkDriver {
  readonly host: Host;
  readonly incarnation: number;
  readonly #opts: LinkDriverOptions;
  readonly #links = new Map<NodeId, Entry>();
  decodeErrors = 0;
  unknownSender = 0;
  /** Link timers that woke before their link's deadline (it had moved later) and only re-armed. */
  earlyWakeups = 0;
  #stopped = false;
  /**
   * The frame every received LinkData datagram is decoded into (`decodeLinkDataInto`): a link reads
   * it during `handleFrame` and keeps none of it but the header and payload.
   */
  readonly #data = blankLinkDataFrame();

  constructor(host: Host, opts: LinkDriverOptions = {}) {
    this.host = host;
    this.#opts = opts;
    let inc = opts.incarnation;
    if (inc === undefined) {
      do inc = host.rng.uint32();
      while (inc === 0);
    }
    this.incarnation = inc;
  }

  /** Starts a link to a directly connected neighbour. */
  addNeighbour(peer: NodeId, config?: Partial<LinkConfig>): Link {
    if (this.#links.has(peer)) throw new RangeError(`neighbour ${peer} already added`);
    const link = new Link({
      local: this.host.id,
      peer,
      incarnation: this.incarnation,
      config: { ...this.#opts.config, ...config },
      now: this.host.clock.now(),
      rng: this.host.rng,
    });
    // Lazy re-arm: the link's deadline moves later after almost every input (each transmission
    // pushes the retransmission timeout, each ack sent clears the ack deadline), and re-arming the
    // host timer each time cost a host timer entry per forwarded packet (issue 10). A deadline that
    // moved later keeps the armed timer; it wakes early, finds nothing due (the link is not called)
    // and is armed again for the real deadline. A deadline that moved earlier re-arms at once.
    let armed: number | undefined;
    const onDelivery = this.#opts.onDelivery;
    const take: Take = onDelivery ? (d) => onDelivery(peer, d) : takeAll;
    const driver = new CoreDriver(this.host, {
      drain: () => this.#drain(peer, link, take),
      hasOutput: () => link.hasOutput,
      nextDeadline: () => {
        const d = link.nextDeadline();
        if (armed === undefined || d < armed) armed = d;
        return armed;
      },
      handleTimeout: (now) => {
        armed = undefined;
        if (now < link.nextDeadline()) {
          this.earlyWakeups++;
          return;
        }
        link.handleTimeout(now);
      },
    });
    this.#links.set(peer, { link, driver });
    driver.flush();
    return link;
  }

  /** Stops a link (sends a goodbye) and forgets it. */
  removeNeighbour(peer: NodeId): void {
    const e = this.#links.get(peer);
    if (!e) return;
    e.driver.input((now) => e.link.close(now));
    e.driver.stop();
    this.#links.delete(peer);
  }

  link(peer: NodeId): Link | undefined {
    return this.#links.get(peer)?.link;
  }

  get neighbours(): NodeId[] {
    return [...this.#links.keys()];
  }

  /** A datagram from the network (NodeProgram.receive). */
  receive(from: NodeId, data: Uint8Array): void {
    if (this.#stopped) return;
    let f: Frame;
    // A LinkData frame (most datagrams) is a link message: no tag lookup.
    if (decodeLinkDataInto(data, this.#data)) f = this.#data;
    else {
      try {
        f = decode(data);
      } catch (err) {
        if (err instanceof WireError) {
          this.decodeErrors++;
          return;
        }
        throw err;
      }
      if (!LINK_TAGS.has(f.msg._tag)) {
        this.#opts.onOtherFrame?.(from, f);
        return;
      }
    }
    const e = this.#links.get(f.sender);
    if (!e) {
      this.unknownSender++;
      return;
    }
    // `e.driver.input((now) => e.link.handleFrame(f, now))` without a closure per datagram.
    if (e.driver.stopped) return;
    e.link.handleFrame(f, this.host.clock.now());
    e.driver.flush();
  }

  /** Sends an overlay packet to a neighbour on a channel. */
  send(
    peer: NodeId,
    channel: LinkChannel,
    header: OverlayHeader,
    payload: Uint8Array,
    flow?: FlowKey,
  ): SendResult {
    const e = this.#links.get(peer);
    if (!e || this.#stopped || e.driver.stopped) return SendResult.Down;
    // `e.driver.input(...)` without a closure per packet.
    const r = e.link.send(channel, header, payload, this.host.clock.now(), flow);
    e.driver.flush();
    return r;
  }

  /** Offers held deliveries again (e.g. after a writable event on the link they are going to). */
  offerDeliveries(peer?: NodeId): void {
    if (peer === undefined) {
      for (const e of this.#links.values()) e.driver.flush();
      return;
    }
    this.#links.get(peer)?.driver.flush();
  }

  /** Sends goodbyes and cancels every timer. */
  stop(): void {
    for (const peer of [...this.#links.keys()]) this.removeNeighbour(peer);
    this.#stopped = true;
  }

  /** One drain pass of a link's outputs; true when anything was sent, reported or delivered. */
  #drain(peer: NodeId, link: Link, take: Take): boolean {
    // A pass that sent, reported or delivered nothing cannot change what the next pass would see,
    // so a re-entrant flush (e.g. a refused forward back onto this same full link) must not make
    // us offer the same held deliveries again forever: CoreDriver stops after such a pass.
    let progress = false;
    const tx = this.#opts.transmit;
    if (link.hasTransmits) {
      progress = true;
      for (let b = link.takeTransmit(); b !== undefined; b = link.takeTransmit()) {
        if (tx) tx(peer, b);
        else this.host.send(peer, b);
      }
    }
    if (link.hasEvents) {
      progress = true;
      for (const ev of link.takeEvents()) this.#opts.onEvent?.(peer, ev);
    }
    if (link.pendingDeliveries > 0) {
      if (link.consumeDeliveries(this.host.clock.now(), take) > 0) progress = true;
    }
    return progress;
  }
}
