// One side of the netns discovery test, run inside a network namespace: announces its node id to
// the group out of its UdpHost's socket, adopts the peer it hears, greets it over unicast, and
// prints one JSON line once it has been greeted back. Exits 1 on timeout.
import { DiscoverySocket, UdpHost } from "../src/index.ts";

const [id, peerId, listen, group, port, iface] = process.argv.slice(2);
const me = Number(id);
const peer = Number(peerId);
const host = await UdpHost.open({ id: me, listen: { address: listen as string, port: 7000 } });
const disco = await DiscoverySocket.open({
  group: group as string,
  port: Number(port),
  via: host,
  ...(iface !== undefined && iface !== "" ? { interface: iface } : {}),
});
let learnedFrom = "";
disco.onMessage = (data, from) => {
  if (data[0] !== peer || host.peer(peer) !== undefined) return;
  host.setPeer(peer, from);
  learnedFrom = `${from.address}:${from.port}`;
};
let greeted = false;
host.attach({
  receive(from, data) {
    if (from === peer && data[0] === 0x48) greeted = true;
  },
});
const tick = setInterval(() => {
  disco.announce(Uint8Array.of(me));
  if (host.peer(peer) !== undefined) host.send(peer, Uint8Array.of(0x48));
  if (greeted) {
    clearInterval(tick);
    console.log(JSON.stringify({ id: me, learnedFrom, kind: disco.kind }));
    // keep answering a little longer so the other side gets its greeting too
    setTimeout(() => void Promise.all([disco.close(), host.close()]), 500);
  }
}, 50);
setTimeout(() => {
  console.error(`node ${me}: timed out (learned ${learnedFrom || "nothing"})`);
  process.exit(1);
}, 8000).unref();
