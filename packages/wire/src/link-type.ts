/**
 * The kind of overlay link a packet rides on — THE one numbering, used both by sessions (the link
 * type a session or datagram prefers, `SessionOpen.linkType`) and by the links themselves (the
 * `channel` byte of `LinkData`: each link type is a channel with its own sequence space). Spec:
 * docs/wire.md §3 and §5.
 */
export const LinkType = { BestEffort: 0, Reliable: 1, RealTime: 2 } as const;
export type LinkType = (typeof LinkType)[keyof typeof LinkType];

/** True for the three defined link types. */
export function isLinkType(v: unknown): v is LinkType {
  return v === LinkType.BestEffort || v === LinkType.Reliable || v === LinkType.RealTime;
}
