/**
 * Static per-link costs (a weight per neighbour, e.g. the edge costs of a Spines `spines.conf`):
 * the cost a node advertises for its edge to a neighbour is the weight times the metric's cost, so
 * with the `hops` metric it is exactly the configured cost, and with a measured metric a costly
 * edge stays that many times dearer than its measurement alone. Weights are the origin's own
 * configuration and travel in the edge items it floods: every node computes routes from the same
 * advertised costs, so routing stays loop-free even when nodes are configured differently.
 */
import { ConfigError } from "@spines-ts/primitives";
import { ROUTE_COST_DOWN } from "@spines-ts/wire";

/** The largest static weight of one link. */
export const MAX_LINK_WEIGHT = 65535;

/** Static costs by neighbour id: a Map or a plain object keyed by the id. */
export type LinkCosts = ReadonlyMap<number, number> | Readonly<Record<number, number>>;

/** Checks a weight (an integer from 1 to MAX_LINK_WEIGHT); throws a ConfigError naming `key`. */
export function checkLinkWeight(source: string, key: string, w: unknown): number {
  if (typeof w !== "number" || !Number.isInteger(w) || w < 1 || w > MAX_LINK_WEIGHT) {
    throw new ConfigError(source, key, `an integer from 1 to ${MAX_LINK_WEIGHT}`, w);
  }
  return w;
}

/** Checks `costs` (ids u32, weights in range, at most `max` entries) into a Map. */
export function resolveLinkCosts(costs: LinkCosts | undefined, max: number): Map<number, number> {
  const out = new Map<number, number>();
  if (costs === undefined) return out;
  if (typeof costs !== "object" || costs === null) {
    throw new ConfigError("RouterOptions", "linkCosts", "a Map or object of neighbour id to cost", costs);
  }
  const entries: [unknown, unknown][] =
    costs instanceof Map ? [...costs.entries()] : Object.entries(costs as Record<string, number>);
  for (const [k, w] of entries) {
    const id = typeof k === "string" ? Number(k) : k;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new ConfigError("RouterOptions", "linkCosts", "u32 neighbour ids as keys", k);
    }
    out.set(id, checkLinkWeight("RouterOptions", `linkCosts.${id}`, w));
  }
  if (out.size > max) {
    throw new ConfigError(
      "RouterOptions",
      "linkCosts",
      `at most ${max} entries (limits.maxEdgesPerOrigin)`,
      out.size,
    );
  }
  return out;
}

/** The advertised cost of a link: weight × metric cost, kept below the "down" value. */
export function weightedCost(weight: number, metricCost: number): number {
  return Math.min(ROUTE_COST_DOWN - 1, weight * metricCost);
}
