import { ControlClient } from "@spines-ts/daemon-kit";
import { afterAll, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import type { SpinesDaemon } from "../src/daemon.ts";
import { PacketTrace, TraceStage } from "../src/trace.ts";
import { freeUdpPorts, inProcessConfig, startInProcess, tmp, waitFor } from "./helpers.ts";

describe("PacketTrace", () => {
  it("keys stamps by the trailing u32 and keeps the newest `capacity` of them", () => {
    const t = new PacketTrace(3);
    for (let k = 1; k <= 5; k++) {
      const b = new Uint8Array(10);
      new DataView(b.buffer).setUint32(6, 0xf0000000 + k);
      t.stamp(TraceStage.Tx, b);
    }
    t.stamp(TraceStage.Rx, new Uint8Array(3)); // too short to name: ignored
    const d = t.dump();
    expect(d.key).toEqual([0xf0000003, 0xf0000004, 0xf0000005]);
    expect(d.stage).toEqual([TraceStage.Tx, TraceStage.Tx, TraceStage.Tx]);
    expect(d.len).toEqual([10, 10, 10]);
    expect(d.overwritten).toBe(2);
    expect(d.t[0]).toBeLessThanOrEqual(d.t[2] as number);
  });

  it("rejects a bad capacity", () => {
    expect(() => new PacketTrace(0)).toThrow(RangeError);
    expect(() => new PacketTrace(1.5)).toThrow(RangeError);
  });
});

const daemons: SpinesDaemon[] = [];
afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
});

describe("control `trace` on a 3-node line", () => {
  it("follows a datagram through every daemon's stages", async () => {
    const dir = tmp();
    const ports = await freeUdpPorts(3);
    for (let i = 0; i < 3; i++) {
      const nb: [number, number][] = [];
      if (i > 0) nb.push([i, ports[i - 1] as number]);
      if (i < 2) nb.push([i + 2, ports[i + 1] as number]);
      const cfg = inProcessConfig(dir, i + 1, ports[i] as number, nb);
      daemons.push(
        await startInProcess({
          ...cfg,
          neighbors: cfg.neighbors.map((n) => ({ ...n, emulation: { delayMs: 2 } })),
        }),
      );
    }
    const [d1, d2, d3] = daemons as [SpinesDaemon, SpinesDaemon, SpinesDaemon];
    await waitFor(() => d1.node.routes().some((r) => r.dst === 3), "a route 1 -> 3", 20_000);
    const ctls = await Promise.all(daemons.map((d) => ControlClient.connect(d.config.control)));
    try {
      await expect(ctls[0]?.call("trace", { action: "bogus" })).rejects.toThrow(/action/);
      for (const c of ctls)
        expect(await c.call("trace", { action: "start", capacity: 4096 })).toEqual({
          tracing: true,
          capacity: 4096,
        });
      const rx = await SpinesClient.connect({ path: d3.config.clientSocket as string });
      const tx = await SpinesClient.connect({ path: d1.config.clientSocket as string });
      const got: Uint8Array[] = [];
      const drx = await rx.openDatagram(9100);
      drx.on("message", (m: Uint8Array) => got.push(m));
      const dtx = await tx.openDatagram(9101);
      const msg = Buffer.alloc(500);
      msg.writeUInt32BE(0xabcdef01, 496);
      await waitFor(
        () => {
          if (got.length === 0) dtx.send(3, 9100, msg);
          return got.length > 0;
        },
        "the datagram",
        10_000,
      );
      type Dump = { t: number[]; stage: number[]; key: number[]; len: number[] };
      const dumps = await Promise.all(ctls.map((c) => c.call<Dump>("trace", { action: "stop" })));
      const stagesOf = (d: Dump) => new Set(d.stage.filter((_, i) => d.key[i] === 0xabcdef01));
      expect([...stagesOf(dumps[0] as Dump)]).toEqual(
        expect.arrayContaining([TraceStage.FromClient, TraceStage.Tx]),
      );
      expect([...stagesOf(dumps[1] as Dump)]).toEqual(
        expect.arrayContaining([TraceStage.Rx, TraceStage.Emu, TraceStage.Tx]),
      );
      expect([...stagesOf(dumps[2] as Dump)]).toEqual(
        expect.arrayContaining([TraceStage.Rx, TraceStage.Emu, TraceStage.Local, TraceStage.Client]),
      );
      // One clock for every process: node 3 saw the packet after node 1 sent it.
      const first = (d: Dump, s: number) =>
        d.t.find((_, i) => d.key[i] === 0xabcdef01 && d.stage[i] === s) as number;
      expect(first(dumps[2] as Dump, TraceStage.Client)).toBeGreaterThan(
        first(dumps[0] as Dump, TraceStage.Tx),
      );
      // Stopped: nothing more is recorded, and a second stop says so.
      expect(await ctls[1]?.call("trace", { action: "stop" })).toEqual({ tracing: false });
      expect(d2.host.tap).toBeUndefined();
      tx.close();
      rx.close();
    } finally {
      for (const c of ctls) c.close();
    }
  }, 60_000);
});
