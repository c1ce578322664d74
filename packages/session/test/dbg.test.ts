import { it } from "vitest";
import { randomPairOptions, runPair } from "./harness.ts";

it("dbg", () => {
  const o = randomPairOptions(Number(process.env.S));
  console.log(JSON.stringify(o));
  const r = runPair(o);
  console.log(
    r.done,
    r.sim.now,
    r.a.received,
    r.b.received,
    String(r.a.closeError),
    r.a.closedAt,
    String(r.b.closeError),
    r.b.closedAt,
    r.a.closeAfterWrite,
    r.b.closeAfterWrite,
    r.a.finSent,
    r.b.finSent,
    r.a.ended,
    r.b.ended,
  );
  console.log(
    r.sim
      .trace(40)
      .map((t) => JSON.stringify(t))
      .join("\n"),
  );
});
