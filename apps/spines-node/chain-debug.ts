import { silentLogger } from "@spines-ts/primitives";
import { SpinesClient } from "./src/client.ts";
import { SpinesDaemon } from "./src/daemon.ts";
import { freeUdpPorts, inProcessConfig, tmp } from "./test/helpers.ts";
const n = Number(process.argv[2] ?? 5);
const dir = tmp();
const ports = await freeUdpPorts(n);
const ds: SpinesDaemon[] = [];
for (let i = 0; i < n; i++) {
  const nb: [number, number][] = [];
  if (i > 0) nb.push([i, ports[i - 1]!]);
  if (i < n - 1) nb.push([i + 2, ports[i + 1]!]);
  ds.push(await SpinesDaemon.start({ config: inProcessConfig(dir, i + 1, ports[i]!, nb), log: silentLogger }));
}
while (!ds[0]!.plane.routes().some((r) => r.dst === n)) await new Promise((r) => setTimeout(r, 20));
const rx = await SpinesClient.connect({ path: ds[n - 1]!.config.clientSocket! });
const tx = await SpinesClient.connect({ path: ds[0]!.config.clientSocket! });
const l = await rx.listen(6000);
const [s, peer] = await Promise.all([tx.connect(n, 6000), l.accept()]);
let got = 0;
peer.on("data", (b: Buffer) => { got += b.length; });
const payload = Buffer.alloc(1000, 7);
let stop = false;
(async () => { while (!stop) { let ok = true; for (let i = 0; i < 64 && ok; i++) ok = s.write(payload); if (!ok) await new Promise((r) => s.once("drain", r)); else await new Promise((r) => setImmediate(r)); } })();
const t0 = Date.now();
await new Promise((r) => setTimeout(r, 3000));
console.log("msgs/s", got / 1000 / ((Date.now() - t0) / 1000));
console.log(JSON.stringify(ds[0]!.sessions.sessions()));
for (const d of ds) { const st = d.status() as any; console.log(d.config.id, JSON.stringify(d.plane.links()), JSON.stringify({fwd: st.counters.forwarded, held: (d.plane as any).forwardHeld, lq: (d.plane as any).localQueueDrops, noRoute: st.counters.noRoute})); }
stop = true;
process.exit(0);
