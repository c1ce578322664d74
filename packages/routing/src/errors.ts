import { SpinesError } from "@spines-ts/primitives";

/** Error codes of the routing core. */
export const RoutingErrorCode = {
  UnknownNeighbor: "ERR_ROUTING_UNKNOWN_NEIGHBOR",
} as const;
export type RoutingErrorCode = (typeof RoutingErrorCode)[keyof typeof RoutingErrorCode];

/** A call named a neighbour whose link the core does not hold as up. */
export class UnknownNeighborError extends SpinesError {
  readonly neighbor: number;
  constructor(neighbor: number, what: string) {
    super(RoutingErrorCode.UnknownNeighbor, `${what}: neighbour ${neighbor} is not up`);
    this.name = "UnknownNeighborError";
    this.neighbor = neighbor;
  }
}
