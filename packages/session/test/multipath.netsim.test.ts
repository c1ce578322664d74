import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { type Host, type NodeProgram, Rng } from "@spines-ts/primitives";
import { decode, isSessionMessage } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { SessionDriver } from "../src/index.ts";
import { addStreamInvariants, pattern, randomLink, StreamApp } from "./harness.ts";

const A = 1;
const B = 2;
const C = 3;
const D = 4;

/** A trivial transit node: forwards every session frame to the node named in its overlay header. */
class Forwarder implements NodeProgram {
  readonly host: Host;
  forwarded = 0;
  constructor(host: Host) {
    this.host = host;
  }
  receive(_from: number, data: Uint8Array): void {
    try {
      const f = decode(data);
      if (!isSessionMessage(f.msg)) return;
      this.forwarded++;
      this.host.send(f.msg.header.dst, data);
    } catch {
      // not ours: drop
    }
  }
}

describe("a stream survives the crash of a transit node (scripted rerouting, netsim)", () => {
  it("300 seeds: A-B-D to A-C-D after B crashes mid-stream: no loss, duplication or reordering", () => {
    let viaCTotal = 0;
    forEachSeed(Number(process.env.SESSION_STRESS_SEEDS ?? 300), (seed) => {
      const rng = new Rng(seed);
      const sim = new Simulator({ seed, traceCapacity: 200 });
      const bytesAD = 30_000 + rng.int(100_000);
      const bytesDA = rng.int(30_000);
      const ad = pattern(seed * 3 + 1, bytesAD);
      const da = pattern(seed * 3 + 2, bytesDA);
      const appA = new StreamApp(ad, da, rng.fork(1));
      const appD = new StreamApp(da, ad, rng.fork(2));
      let via = B;
      // In flight is capped by the receive window (32 KiB), below the links' 64 KB drop-tail queues.
      // Two lossy hops each way: a 30 s dead-peer timeout keeps false deaths out of 10,000s of seeds.
      const config = { initialRtoMs: 300, receiveBufferBytes: 32 * 1024, deadPeerTimeoutMs: 30_000 };
      const bandwidthBps = 500_000 + rng.int(1_500_000);
      sim.addNode(B, (h) => new Forwarder(h));
      sim.addNode(C, (h) => new Forwarder(h));
      sim.addNode(
        D,
        SessionDriver.factory(
          {
            config,
            route: () => via,
            onEvent: (e, d) => {
              if (e.type === "incoming") {
                appD.sid = d.accept(80);
                appD.connected = true;
                appD.pushWrites(d);
                return;
              }
              appD.onEvent(e, d);
            },
          },
          (d) => d.listen(80),
        ),
      );
      sim.addNode(
        A,
        SessionDriver.factory({ config, route: () => via, onEvent: (e, d) => appA.onEvent(e, d) }),
      );
      for (const [x, y] of [
        [A, B],
        [B, D],
        [A, C],
        [C, D],
      ] as const) {
        sim.connect(x, y, { ...randomLink(rng, 0.1), bandwidthBps });
      }
      const dA = sim.program<SessionDriver>(A)!;
      const dD = sim.program<SessionDriver>(D)!;
      sim.at(1, () => {
        appA.sid = dA.connect(D, 80);
      });
      // B dies somewhere in the transfer; "routing" notices after a delay and switches A and D to C
      const transferMs = ((bytesAD + bytesDA) * 8 * 1000) / bandwidthBps;
      const crashAt = 50 + rng.uniform(0.05, 0.9) * transferMs;
      const rerouteAfter = 20 + rng.uniform(0, 1000);
      let receivedAtCrash = -1;
      sim.at(crashAt, (s) => {
        receivedAtCrash = appD.received;
        s.crash(B);
      });
      sim.at(crashAt + rerouteAfter, () => {
        via = C;
      });
      addStreamInvariants(sim, [appA, appD], [dA, dD]);
      const done = sim.runUntil(() => appA.closedAt !== undefined && appD.closedAt !== undefined, 300_000);
      expect(
        done,
        `seed ${seed}: finished (A got ${appA.received}/${bytesDA}, D got ${appD.received}/${bytesAD})`,
      ).toBe(true);
      if (process.env.DEBUG_SEED) {
        console.log({
          crashAt,
          rerouteAfter,
          a: [appA.closedAt, String(appA.closeError)],
          d: [appD.closedAt, String(appD.closeError)],
        });
        console.log(
          sim
            .trace(80)
            .map((t) => JSON.stringify(t))
            .join("\n"),
        );
      }
      expect(appA.closeError).toBeUndefined();
      expect(appD.closeError).toBeUndefined();
      expect(appD.received).toBe(bytesAD);
      expect(appA.received).toBe(bytesDA);
      if (receivedAtCrash < bytesAD) {
        viaCTotal++;
        expect((sim.program<Forwarder>(C) as Forwarder).forwarded).toBeGreaterThan(0);
      }
    });
    // most runs crashed B while the stream was still flowing (the point of the test)
    expect(viaCTotal).toBeGreaterThan(250);
  });
});
