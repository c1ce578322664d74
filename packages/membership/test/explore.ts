// Scratch runner: pnpm tsx test/explore.ts <kind> <count> [start]
import { runScenario, type ScenarioOptions } from "./scenario.ts";

const [kind = "all", countS = "200", startS = "1"] = process.argv.slice(2);
const presets: Record<string, (seed: number) => ScenarioOptions> = {
  all: (seed) => ({ seed, n: 3 + (seed % 4), kinds: ["crash", "linkFlap", "partition"] }),
  cascade: (seed) => ({ seed, n: 4 + (seed % 3), cascades: 2 }),
  fast: (seed) => ({
    seed,
    n: 3 + (seed % 4),
    profile: "fast",
    kinds: ["crash", "linkFlap", "partition"],
    faultsUntil: 1500,
    meanFaultIntervalMs: 200,
  }),
  harsh: (seed) => ({
    seed,
    n: 3 + (seed % 5),
    loss: 0.1,
    reorder: 0.1,
    duplicate: 0.05,
    kinds: ["crash", "linkFlap", "partition"],
    meanFaultIntervalMs: 150,
    cascades: 1,
    rate: 300,
  }),
  big: (seed) => ({
    seed,
    n: 8 + (seed % 5),
    kinds: ["crash", "linkFlap", "partition"],
    cascades: 1,
    faultsUntil: 2000,
  }),
  fastcascade: (seed) => ({
    seed,
    n: 4 + (seed % 4),
    profile: "fast",
    cascades: 3,
    faultsUntil: 1500,
    kinds: ["crash", "partition"],
  }),
  longpause: (seed) => ({
    seed,
    n: 3 + (seed % 4),
    pauses: 3,
    pauseMs: 200 + (seed % 7) * 150,
    kinds: ["crash", "partition"],
    profile: seed % 2 ? "fast" : "default",
  }),
  pause: (seed) => ({ seed, n: 4, pauses: 5, pauseMs: 100, loss: 0, kinds: [] }),
};
const t0 = performance.now();
const conv: number[] = [];
let fails = 0;
for (let s = Number(startS); s < Number(startS) + Number(countS); s++) {
  try {
    const r = runScenario(presets[kind]!(s));
    if (r.obs.violation !== undefined) {
      fails++;
      console.log(`seed ${s}: ${r.obs.violation}`);
      if (fails > 2) break;
    } else if (r.convergeMs === undefined) {
      fails++;
      console.log(`seed ${s}: no convergence within ${r.bound}\n${r.summary}`);
      if (fails > 2) break;
    } else conv.push(r.convergeMs);
  } catch (e) {
    fails++;
    console.log(`seed ${s}: ${(e as Error).message.slice(0, 3000)}`);
    if (fails > 2) break;
  }
}
conv.sort((a, b) => a - b);
console.log(
  `${kind}: ${conv.length} ok, ${fails} failed, ${(performance.now() - t0).toFixed(0)} ms; converge p50 ${conv[conv.length >> 1]} p99 ${conv[Math.floor(conv.length * 0.99)]} max ${conv[conv.length - 1]}`,
);
