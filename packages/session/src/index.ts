/**
 * @packageDocumentation
 * End-to-end reliable streams and datagrams over the overlay, sans-IO.
 */
export {};
