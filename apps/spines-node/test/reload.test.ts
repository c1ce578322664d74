import { MemoryLogger } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, tmp } from "./helpers.ts";

describe("reload (SIGHUP)", () => {
  it("applies log level and emulation, and names what needs a restart", async () => {
    const [p, q] = (await freeUdpPorts(2)) as [number, number];
    const cfg = inProcessConfig(tmp(), 1, p, [[2, q]]);
    const levels: string[] = [];
    const d = await SpinesDaemon.start({
      config: cfg,
      log: new MemoryLogger(),
      setLogLevel: (l) => levels.push(l),
    });
    try {
      const next = {
        ...cfg,
        logLevel: "debug" as const,
        listen: { address: "127.0.0.1", port: p + 1 },
        neighbors: [
          { ...(cfg.neighbors[0] as (typeof cfg.neighbors)[number]), emulation: { delayMs: 5 } },
          { id: 3, endpoint: { address: "127.0.0.1", port: 9 } },
        ],
        link: { helloIntervalMs: 50 },
      };
      const r = d.reload(next);
      expect(r.applied.sort()).toEqual(["logLevel", "neighbors.2.emulation"]);
      expect(r.needsRestart.sort()).toEqual(["link", "listen", "neighbors.3"]);
      expect(levels).toEqual(["debug"]);
      expect(d.emulator.get(2)).toEqual({ delayMs: 5 });
      expect(d.config.logLevel).toBe("debug");
      // Removing the emulation from the file clears it.
      const r2 = d.reload({ ...next, neighbors: cfg.neighbors });
      expect(r2.applied).toEqual(["neighbors.2.emulation"]);
      expect(d.emulator.get(2)).toBe(undefined);
    } finally {
      await d.stop();
    }
  });
});
