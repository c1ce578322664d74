import { runBottleneck } from "./bench/scenarios.ts";
for (const [name, cfg] of [["default", {}], ["ack1", { ackEvery: 1 }], ["nopace", { pacing: false }]] as const)
  for (let s = 1; s <= 1; s++) { const r = runBottleneck(s, { durationMs: 20000, config: cfg }); console.log(name, JSON.stringify(r)); }
