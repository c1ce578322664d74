/** Bursty loss: a two-state Markov chain stepped once per packet (Gilbert–Elliott). */
export interface GilbertElliott {
  /** Probability of moving from the good to the bad state, per packet. */
  pGoodToBad: number;
  /** Probability of moving from the bad to the good state, per packet. */
  pBadToGood: number;
  /** Loss probability in the good state (often 0). */
  lossGood: number;
  /** Loss probability in the bad state (often 1). */
  lossBad: number;
}

/**
 * The behaviour of one direction of a link. Only `delayMs` is required.
 *
 * A packet's fate, in order: the MTU check, the drop-tail queue of the bottleneck (when
 * `bandwidthBps` is set), then loss (independent `loss`, and Gilbert–Elliott when set; both apply),
 * then propagation (`delayMs` ± `jitterMs`), reordering and duplication. Links are FIFO: jitter
 * never makes a packet overtake an earlier one on the same link; only `reorder` does.
 */
export interface LinkParams {
  /** One-way propagation delay, ms (>= 0). */
  delayMs: number;
  /** Each packet's delay is uniform in [delayMs - jitterMs, delayMs + jitterMs] (floored at 0). Default 0. */
  jitterMs?: number;
  /** Independent loss probability per packet, in [0, 1]. Default 0. */
  loss?: number;
  /** Bursty loss; its stationary loss rate is πG·lossGood + πB·lossBad with πB = pGB/(pGB+pBG). */
  gilbertElliott?: GilbertElliott;
  /** Probability that a packet is held back `reorderDelayMs` extra and overtaken by later ones. Default 0. */
  reorder?: number;
  /** Extra delay of a reordered packet, ms (> 0). Default max(1, delayMs). */
  reorderDelayMs?: number;
  /** Probability that a packet is delivered twice (the copy arrives right after it; it costs no bandwidth). Default 0. */
  duplicate?: number;
  /** Bottleneck rate in bits per second; packets are serialized one after another. Default: unlimited. */
  bandwidthBps?: number;
  /** Drop-tail queue of the bottleneck, in bytes waiting or in transmission. Default 64,000. Needs bandwidthBps. */
  queueBytes?: number;
  /** Per-packet header bytes counted against bandwidth and queue (e.g. 28 for IPv4+UDP). Default 0. */
  overheadBytes?: number;
  /** Largest payload in bytes; bigger packets are dropped (cause "mtu"). Default 65,507. */
  mtu?: number;
}

/** Resolved link parameters (every field present), as used on the hot path. */
export interface ResolvedLinkParams {
  delayMs: number;
  jitterMs: number;
  loss: number;
  ge: GilbertElliott | undefined;
  reorder: number;
  reorderDelayMs: number;
  duplicate: number;
  /** 0 = unlimited. */
  bandwidthBps: number;
  queueBytes: number;
  overheadBytes: number;
  mtu: number;
}

export const DEFAULT_QUEUE_BYTES = 64_000;
export const DEFAULT_MTU = 65_507;

function prob(where: string, key: string, v: unknown): number {
  if (typeof v !== "number") throw new TypeError(`${where}: ${key} must be a number, got ${typeof v}`);
  if (!(v >= 0 && v <= 1)) throw new RangeError(`${where}: ${key} must be in [0, 1], got ${v}`);
  return v;
}

function nonNeg(where: string, key: string, v: unknown): number {
  if (typeof v !== "number") throw new TypeError(`${where}: ${key} must be a number, got ${typeof v}`);
  if (!(v >= 0 && Number.isFinite(v)))
    throw new RangeError(`${where}: ${key} must be a finite number >= 0, got ${v}`);
  return v;
}

function positive(where: string, key: string, v: unknown): number {
  if (typeof v !== "number") throw new TypeError(`${where}: ${key} must be a number, got ${typeof v}`);
  if (!(v > 0 && Number.isFinite(v)))
    throw new RangeError(`${where}: ${key} must be a finite number > 0, got ${v}`);
  return v;
}

/** Validates `p` (merged over `base` when given) and fills in the defaults. */
export function resolveLinkParams(
  where: string,
  p: Partial<LinkParams>,
  base?: LinkParams,
): { params: LinkParams; resolved: ResolvedLinkParams } {
  if (typeof p !== "object" || p === null) throw new TypeError(`${where}: link params must be an object`);
  const m: Partial<LinkParams> = base === undefined ? { ...p } : { ...base, ...p };
  if (m.delayMs === undefined) throw new TypeError(`${where}: delayMs is required`);
  const delayMs = nonNeg(where, "delayMs", m.delayMs);
  const jitterMs = m.jitterMs === undefined ? 0 : nonNeg(where, "jitterMs", m.jitterMs);
  const loss = m.loss === undefined ? 0 : prob(where, "loss", m.loss);
  let ge: GilbertElliott | undefined;
  if (m.gilbertElliott !== undefined) {
    const g = m.gilbertElliott;
    if (typeof g !== "object" || g === null)
      throw new TypeError(`${where}: gilbertElliott must be an object`);
    ge = {
      pGoodToBad: prob(where, "gilbertElliott.pGoodToBad", g.pGoodToBad),
      pBadToGood: prob(where, "gilbertElliott.pBadToGood", g.pBadToGood),
      lossGood: prob(where, "gilbertElliott.lossGood", g.lossGood),
      lossBad: prob(where, "gilbertElliott.lossBad", g.lossBad),
    };
  }
  const reorder = m.reorder === undefined ? 0 : prob(where, "reorder", m.reorder);
  const reorderDelayMs =
    m.reorderDelayMs === undefined
      ? Math.max(1, delayMs)
      : positive(where, "reorderDelayMs", m.reorderDelayMs);
  const duplicate = m.duplicate === undefined ? 0 : prob(where, "duplicate", m.duplicate);
  const bandwidthBps = m.bandwidthBps === undefined ? 0 : positive(where, "bandwidthBps", m.bandwidthBps);
  const queueBytes =
    m.queueBytes === undefined ? DEFAULT_QUEUE_BYTES : positive(where, "queueBytes", m.queueBytes);
  if (m.queueBytes !== undefined && m.bandwidthBps === undefined)
    throw new RangeError(`${where}: queueBytes needs bandwidthBps (a queue only builds behind a bottleneck)`);
  const overheadBytes = m.overheadBytes === undefined ? 0 : nonNeg(where, "overheadBytes", m.overheadBytes);
  const mtu = m.mtu === undefined ? DEFAULT_MTU : positive(where, "mtu", m.mtu);
  const params = m as LinkParams;
  return {
    params,
    resolved: {
      delayMs,
      jitterMs,
      loss,
      ge,
      reorder,
      reorderDelayMs,
      duplicate,
      bandwidthBps,
      queueBytes,
      overheadBytes,
      mtu,
    },
  };
}

/** The long-run loss rate of a Gilbert–Elliott chain: πG·lossGood + πB·lossBad. */
export function gilbertElliottLossRate(g: GilbertElliott): number {
  const s = g.pGoodToBad + g.pBadToGood;
  const piBad = s === 0 ? 0 : g.pGoodToBad / s;
  return (1 - piBad) * g.lossGood + piBad * g.lossBad;
}
