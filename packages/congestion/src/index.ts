/**
 * @packageDocumentation
 * TCP-fair congestion control (NewReno, CUBIC), pacing, token-bucket caps and deficit-round-robin flow scheduling, sans-IO.
 */
export {};
