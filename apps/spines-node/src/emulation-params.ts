/**
 * Link emulation parameters, as Spines' `setlink` (bandwidth, latency, loss, burst) plus jitter and a
 * queue bound. Every field is optional; an absent or zero field means "no effect".
 */
export interface EmulationParams {
  /** Receive-side bottleneck in kbit/s (0 = unlimited). */
  readonly bandwidthKbps?: number;
  /** Added one-way delay in milliseconds. */
  readonly delayMs?: number;
  /** Uniform jitter in milliseconds added on top of `delayMs` (never reorders packets). */
  readonly jitterMs?: number;
  /** Average loss in percent (0-100). */
  readonly lossPct?: number;
  /**
   * Burstiness in percent (0-100): the probability that a packet is lost given that the previous one
   * was (a two-state Gilbert model whose average loss stays `lossPct`). 0 = independent losses.
   */
  readonly burstPct?: number;
  /** Bound on the bytes waiting in the emulator (default 1 MiB); packets beyond it are dropped. */
  readonly queueBytes?: number;
}

export const EMULATION_KEYS = [
  "bandwidthKbps",
  "delayMs",
  "jitterMs",
  "lossPct",
  "burstPct",
  "queueBytes",
] as const;

const LIMITS: Record<(typeof EMULATION_KEYS)[number], [number, number]> = {
  bandwidthKbps: [0, 100_000_000],
  delayMs: [0, 60_000],
  jitterMs: [0, 60_000],
  lossPct: [0, 100],
  burstPct: [0, 100],
  queueBytes: [0, 1 << 30],
};

/**
 * Checks one emulation object; returns `[key, expected, found]` for the first bad field, or the
 * validated params. Used by the config loader and the control socket, which each wrap the problem
 * into their own error.
 */
export function checkEmulation(
  v: unknown,
): { ok: true; params: EmulationParams } | { ok: false; key: string; expected: string; found: unknown } {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return { ok: false, key: "", expected: "an object", found: Array.isArray(v) ? "an array" : v };
  }
  const out: Record<string, number> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!(EMULATION_KEYS as readonly string[]).includes(k)) {
      return { ok: false, key: k, expected: `one of ${EMULATION_KEYS.join(", ")}`, found: "an unknown key" };
    }
    const [lo, hi] = LIMITS[k as (typeof EMULATION_KEYS)[number]];
    if (typeof val !== "number" || !Number.isFinite(val) || val < lo || val > hi) {
      return { ok: false, key: k, expected: `a number from ${lo} to ${hi}`, found: val };
    }
    out[k] = val;
  }
  return { ok: true, params: out as EmulationParams };
}

export function isEmulationActive(p: EmulationParams): boolean {
  return (p.bandwidthKbps ?? 0) > 0 || (p.delayMs ?? 0) > 0 || (p.jitterMs ?? 0) > 0 || (p.lossPct ?? 0) > 0;
}
