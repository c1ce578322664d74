/**
 * Smoothed RTT and retransmission timeout (RFC 6298 gains 1/8 and 1/4). Before the first sample the
 * timeout is `initialRto`; the floor `minRto` applies after that rule, so an unknown RTT never
 * yields a tiny timeout. Back-off doubles per consecutive timeout up to `maxRto`.
 */
export class RttEstimator {
  srtt: number | undefined = undefined;
  rttvar = 0;
  latest = 0;
  readonly #initialRto: number;
  readonly #minRto: number;
  readonly #maxRto: number;

  constructor(initialRto: number, minRto: number, maxRto: number) {
    this.#initialRto = initialRto;
    this.#minRto = minRto;
    this.#maxRto = maxRto;
  }

  sample(rtt: number): void {
    if (!(rtt >= 0) || !Number.isFinite(rtt)) return;
    this.latest = rtt;
    if (this.srtt === undefined) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
  }

  /** The timeout after `backoff` consecutive expiries. */
  rto(backoff = 0): number {
    const base =
      this.srtt === undefined
        ? this.#initialRto
        : Math.max(this.#minRto, this.srtt + Math.max(1, 4 * this.rttvar));
    return Math.min(this.#maxRto, base * 2 ** Math.min(backoff, 30));
  }
}
