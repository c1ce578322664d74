import { ControlClient } from "@spines-ts/daemon-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import type { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, startInProcess, tmp, waitFor } from "./helpers.ts";

let a: SpinesDaemon;
let b: SpinesDaemon;
let ctl: ControlClient;

beforeAll(async () => {
  const dir = tmp();
  const [pa, pb] = (await freeUdpPorts(2)) as [number, number];
  a = await startInProcess(inProcessConfig(dir, 1, pa, [[2, pb]]));
  b = await startInProcess(inProcessConfig(dir, 2, pb, [[1, pa]]));
  ctl = await ControlClient.connect(a.config.control);
});
afterAll(async () => {
  ctl?.close();
  await a?.stop();
  await b?.stop();
});

const link = () => a.node.linkStatus()[0] as { state: string; rttMs: number | null };

describe("link emulation in the daemon (set from the control socket)", () => {
  it("delay on receive shows in the link's measured RTT", async () => {
    await waitFor(() => link().state === "up" && link().rttMs !== null, "link up with an RTT");
    expect(link().rttMs as number).toBeLessThan(40);
    await ctl.call("set-link", { neighbor: 2, emulation: { delayMs: 60 } });
    await waitFor(() => (link().rttMs ?? 0) > 45, "RTT above the added delay", 15_000);
    await ctl.call("set-link", { neighbor: 2, emulation: null });
    await waitFor(() => (link().rttMs ?? 100) < 40, "RTT back down", 15_000);
  });

  it("100% loss on receive takes the link down, and clearing it brings it back", async () => {
    await ctl.call("set-link", { neighbor: 2, emulation: { lossPct: 100 } });
    await waitFor(() => link().state === "down", "link down", 10_000);
    const st = await ctl.call<{ counters: { emulation: Record<string, { lost: number }> } }>("status");
    expect(st.counters.emulation["2"]?.lost).toBeGreaterThan(0);
    await ctl.call("set-link", { neighbor: 2, emulation: null });
    await waitFor(() => link().state === "up", "link up again", 15_000);
  });

  it.each([
    [0, "best-effort"],
    [2, "real-time"],
  ])(
    "a session on link type %s (%s) recovers a 3 per cent loss end to end",
    async (link) => {
      await ctl.call("set-link", { neighbor: 2, emulation: { lossPct: 3 } });
      await waitFor(() => (a.node.linkStatus()[0] as { state: string }).state === "up", "link up", 15_000);
      // A link that came back up carries traffic once both ends advertise it (the two-way check).
      await waitFor(() => b.node.route(1) !== undefined, "a route from 2 to 1", 15_000);
      const ca = await SpinesClient.connect({ path: a.config.clientSocket as string });
      const cb = await SpinesClient.connect({ path: b.config.clientSocket as string });
      const l = await ca.listen(0);
      const [s, peer] = await Promise.all([cb.connect(1, l.port, { link: link as 0 | 2 }), l.accept()]);
      const data = Buffer.alloc(200_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
      const chunks: Buffer[] = [];
      peer.on("data", (x: Buffer) => chunks.push(x));
      const ended = new Promise((r) => peer.once("end", r));
      s.end(data);
      await ended;
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      const info = a.sessions.sessions().find((x) => x.localPort === l.port);
      expect(info?.link).toBe(link);
      await ctl.call("set-link", { neighbor: 2, emulation: null });
      ca.close();
      cb.close();
    },
    30_000,
  );
});
