import { runBottleneck } from "./bench/scenarios.ts";
for (const j of [0, 0.2, 0.5, 1]) for (const [name, cfg] of [["default", {}], ["nopace", { pacing: false }], ["ack1", { ackEvery: 1 }]] as const) {
  const rs = [];
  for (let s = 1; s <= 4; s++) { const r = runBottleneck(s, { durationMs: 20000, accessJitterMs: j, config: cfg }); rs.push(r.linkRatio.toFixed(3)); }
  console.log("jitter", j, name, rs.join(" "));
}
