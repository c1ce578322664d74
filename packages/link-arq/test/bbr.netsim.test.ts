/**
 * The opt-in BBR controller (`congestion: { kind: "bbr" }`) driven by the real link core in netsim:
 * always paced, it fills a bottleneck it has alone, and against end-to-end NewReno flows it does not
 * back off on loss (the known BBR-versus-Reno outcome, docs/links.md §6).
 */
import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { resolveLinkConfig } from "../src/index.ts";
import { runSharedBottleneck } from "./support/multcp.ts";

const BBR = { congestion: { kind: "bbr" as const } };

describe("BBR links (netsim)", () => {
  it("the link configuration accepts kind bbr", () => {
    expect(resolveLinkConfig(BBR, "test").congestion.kind).toBe("bbr");
    expect(() => resolveLinkConfig({ congestion: { kind: "vegas" } } as never, "test")).toThrow(/bbr/);
  });

  it("alone on a 20 Mbit/s bottleneck with a 2 BDP queue it carries at least 90 % of it, 3 seeds", () => {
    forEachSeed(3, (seed) => {
      const r = runSharedBottleneck(seed, {
        linkFlows: 1,
        renoFlows: 0,
        bandwidthBps: 20e6,
        queueBdp: 2,
        durationMs: 10_000,
        config: BBR,
      });
      const mbit = ((r.linkFlowBytes[0] as number) * 8) / 10_000 / 1000;
      expect(mbit).toBeGreaterThanOrEqual(18);
      expect(r.linkReductions).toBe(0); // no timeouts
    });
  });

  it("against one NewReno flow it keeps at least its share (a NewReno link in its place gets 0.8-1.25)", () => {
    forEachSeed(3, (seed) => {
      const r = runSharedBottleneck(seed, {
        linkFlows: 1,
        renoFlows: 1,
        durationMs: 20_000,
        queueBdp: 2,
        config: BBR,
      });
      expect(r.overlayShare).toBeGreaterThanOrEqual(1);
      expect(r.overlayShare).toBeLessThanOrEqual(2);
    });
  });
});
