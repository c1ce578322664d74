import { type HostPair, hostComplianceSuite } from "@spines-ts/host-compliance";
import type { Host, NodeProgram } from "@spines-ts/primitives";
import { SimEventError, Simulator } from "../src/index.ts";

/**
 * The compliance harness over the simulator's hosts: nodes 1 and 2 on a 1 ms link, virtual time.
 * The simulator does not swallow handler exceptions: it throws them out of `run` as
 * `SimEventError` so a proof fails loudly; the harness counts them and runs on, which must lose
 * no later event.
 */
async function simPair(): Promise<HostPair> {
  const sim = new Simulator({ seed: 1 });
  const hosts = new Map<number, Host>();
  const programs = new Map<number, NodeProgram>();
  for (const id of [1, 2]) {
    sim.addNode(id, (host) => {
      hosts.set(id, host);
      return { receive: (from, data) => programs.get(id)?.receive(from, data) };
    });
  }
  sim.connect(1, 2, { delayMs: 1 });
  let errors = 0;
  const a = hosts.get(1) as Host;
  const b = hosts.get(2) as Host;
  return {
    a,
    b,
    unknownPeer: 99,
    attach: (h, p) => {
      programs.set(h.id, p);
    },
    advance: async (ms) => {
      const until = sim.now + ms;
      for (;;) {
        try {
          sim.run(until);
          return;
        } catch (e) {
          if (!(e instanceof SimEventError)) throw e;
          errors++;
        }
      }
    },
    handlerErrors: () => errors,
    unsent: () => sim.stats.drops.noLink + sim.stats.drops.crashed,
    timerWakeups: () => sim.stats.timersFired,
    close: async (h) => sim.crash(h.id),
    dispose: async () => {},
  };
}

hostComplianceSuite("netsim Simulator host", simPair);
