/**
 * Issue 11 on real daemons: the link RTT under the built-in emulation reads at least the emulated
 * round trip, also when the delay is set after traffic crossed the link (acks that acknowledge
 * nothing new used to echo an old frame and read 75-86 ms for 2 x 50 ms).
 */

import { ControlClient } from "@spines-ts/daemon-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import type { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, startInProcess, tmp, waitFor } from "./helpers.ts";

let a: SpinesDaemon;
let b: SpinesDaemon;
let ctlA: ControlClient;
let ctlB: ControlClient;

beforeAll(async () => {
  const dir = tmp();
  const [pa, pb] = (await freeUdpPorts(2)) as [number, number];
  a = await startInProcess(inProcessConfig(dir, 1, pa, [[2, pb]]));
  b = await startInProcess(inProcessConfig(dir, 2, pb, [[1, pa]]));
  ctlA = await ControlClient.connect(a.config.control);
  ctlB = await ControlClient.connect(b.config.control);
});
afterAll(async () => {
  ctlA?.close();
  ctlB?.close();
  await a?.stop();
  await b?.stop();
});

const rttOf = (d: SpinesDaemon) => (d.node.linkStatus()[0] as { rttMs: number | null }).rttMs;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("link RTT under emulated delay (real daemons)", () => {
  it("a stream, then 50 ms each way with set-link: both ends read >= 100 ms", async () => {
    await waitFor(
      () => rttOf(a) !== null && rttOf(b) !== null && a.node.plane.hasRoute(2) && b.node.plane.hasRoute(1),
      "links up and routes",
    );
    const ca = await SpinesClient.connect({ path: a.config.clientSocket as string });
    const cb = await SpinesClient.connect({ path: b.config.clientSocket as string });
    const l = await ca.listen(0);
    const [s, peer] = await Promise.all([cb.connect(1, l.port, { link: 1 }), l.accept()]);
    const data = Buffer.alloc(1_000_000, 7);
    let got = 0;
    peer.on("data", (x: Buffer) => {
      got += x.length;
    });
    const ended = new Promise((r) => peer.once("end", r));
    s.end(data);
    await ended;
    expect(got).toBe(data.length);
    ca.close();
    cb.close();
    await sleep(1000);
    await ctlA.call("set-link", { neighbor: 2, emulation: { delayMs: 50 } });
    await ctlB.call("set-link", { neighbor: 1, emulation: { delayMs: 50 } });
    // SRTT converges within a few seconds of hellos; then sample it for two seconds.
    await sleep(6000);
    let least = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 20; i++) {
      for (const d of [a, b]) least = Math.min(least, rttOf(d) ?? Number.POSITIVE_INFINITY);
      await sleep(100);
    }
    expect(least).toBeGreaterThanOrEqual(99.9);
  }, 60_000);
});
