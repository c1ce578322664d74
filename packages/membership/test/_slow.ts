import { runScenario } from "./scenario.ts";
import type { MembershipNode } from "../src/index.ts";
for (let seed = 10000; seed < 10300; seed++) {
  const o = { seed, n: 3 + (seed % 5), loss: 0.1, reorder: 0.1, duplicate: 0.05, kinds: ["crash", "linkFlap", "partition"] as const, meanFaultIntervalMs: 150, cascades: 1, rate: 300 };
  const r = runScenario({ ...o, kinds: [...o.kinds] });
  if ((r.convergeMs ?? 9999) > 800) {
    console.log(seed, r.convergeMs, r.ids.map((id) => { const c = r.sim.program<MembershipNode>(id)?.core; return c ? `${id}:rto=${c.dataRtoMs.toFixed(0)} pend=${c.pendingCount} rtx=${c.stats.dataRetransmits} views=${c.stats.viewsInstalled}` : `${id}:down`; }).join(" "));
  }
}
