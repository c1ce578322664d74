/**
 * Issue 11 on real daemons: a neighbour configured with the wrong node id never comes up; the
 * daemon says so at warn, once per neighbour (not once per frame), naming the address and both ids.
 */
import { MemoryLogger } from "@spines-ts/primitives";
import { afterAll, describe, expect, it } from "vitest";
import { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, startInProcess, tmp } from "./helpers.ts";

const started: SpinesDaemon[] = [];
afterAll(async () => {
  for (const d of started) await d.stop();
});

describe("a neighbour configured with the wrong id (real daemons)", () => {
  it("is reported at warn once, with its address and both ids", async () => {
    const dir = tmp();
    const [pa, pb] = (await freeUdpPorts(2)) as [number, number];
    const log = new MemoryLogger();
    // Node 1 believes the daemon at pb is node 3; it is node 2.
    const a = await SpinesDaemon.start({ config: inProcessConfig(dir, 1, pa, [[3, pb]]), log });
    started.push(a);
    started.push(await startInProcess(inProcessConfig(dir, 2, pb, [[1, pa]])));
    // Node 2 says hello ten times a second: many frames, one warning.
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.node.plane.counters.senderMismatch).toBeGreaterThan(5);
    // Besides the start-up warning that links are unauthenticated (no key file here), exactly one.
    const all = log.records.filter((r) => r.level === "warn");
    expect(all.filter((r) => (r.msg ?? "").includes("UNAUTHENTICATED"))).toHaveLength(1);
    const warns = all.filter((r) => !(r.msg ?? "").includes("UNAUTHENTICATED"));
    expect(warns).toHaveLength(1);
    const w = warns[0];
    expect(w?.obj).toMatchObject({ neighbor: 3, claimedId: 2, address: `127.0.0.1:${pb}` });
    expect(w?.msg).toContain(`127.0.0.1:${pb}`);
    expect(w?.msg).toContain("node 2");
    expect(w?.msg).toContain("neighbour 3");
  });
});
