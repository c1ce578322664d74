/**
 * A membership member as a process, for integration tests, benchmarks and demos.
 *
 *   tsx packages/membership/tools/member.ts --id 1 --port 7001 \
 *       --peers 2@127.0.0.1:7002,3@127.0.0.1:7003 [--group g] [--profile default|fast] \
 *       [--discovery multicast:239.255.42.99:7400[:127.0.0.1]]
 *
 * Prints one JSON object per line on stdout (`t` is wall-clock ms, sub-ms precision):
 *   {"ev":"ready","id":1,"port":7001,"inc":...}
 *   {"ev":"view","key":"3.1.123","members":[1,2,3],"transitional":[1,2],"t":...}
 *   {"ev":"transitional","t":...}
 *   {"ev":"message","sender":2,"senderSeq":1,"seq":5,"text":"hello","t":...}
 *   {"ev":"left"}
 * Reads commands on stdin, one per line: `send <text>`, `burst <n> <size>` (n messages of size
 * bytes, waiting for drain when blocked), `busy <ms>` (block the event loop), `leave`, `stats`.
 */
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { type ProfileName, profiles } from "../src/types.ts";
import { type UdpDiscovery, UdpMember, type UdpPeer } from "../src/udp.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function wall(): number {
  return performance.timeOrigin + performance.now();
}

function out(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

const id = Number(arg("id"));
const port = Number(arg("port") ?? 0);
const profile = (arg("profile") ?? "default") as ProfileName;
if (!(profile in profiles)) throw new Error(`unknown profile ${profile}`);
const peers: UdpPeer[] = (arg("peers") ?? "")
  .split(",")
  .filter((s) => s !== "")
  .map((s) => {
    const [pid, addr] = s.split("@");
    const [host, p] = (addr ?? "").split(":");
    return { id: Number(pid), host: host ?? "127.0.0.1", port: Number(p) };
  });
let discovery: UdpDiscovery | undefined;
const disc = arg("discovery");
if (disc) {
  const [, address, dport, iface] = disc.split(":");
  discovery = {
    address: address ?? "239.255.42.99",
    port: Number(dport),
    ...(iface ? { interface: iface, ttl: 0 } : {}),
  };
}

const m = await UdpMember.start({
  id,
  group: arg("group") ?? "g",
  profile,
  bind: { host: "127.0.0.1", port },
  peers,
  ...(discovery ? { discovery } : {}),
});
const dec = new TextDecoder();
m.on("view", (v) =>
  out({ ev: "view", key: v.key, members: v.members, transitional: v.transitional, t: wall() }),
);
m.on("transitional", () => out({ ev: "transitional", t: wall() }));
let quiet = false;
let received = 0;
m.on("message", (d) => {
  received++;
  if (!quiet)
    out({
      ev: "message",
      sender: d.sender,
      senderSeq: d.senderSeq,
      seq: d.seq,
      text: dec.decode(d.payload),
      t: wall(),
    });
});
m.on("left", () => {
  out({ ev: "left", t: wall() });
  setImmediate(() => process.exit(0));
});
out({ ev: "ready", id, port: m.port, inc: m.core.incarnation });

const enc = new TextEncoder();
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const [cmd, ...rest] = line.trim().split(" ");
  if (cmd === "send") {
    out({ ev: "sent", ok: m.multicast(enc.encode(rest.join(" "))) });
  } else if (cmd === "burst") {
    // throughput: n messages of `size` bytes; prints when all of them came back
    quiet = true;
    const n = Number(rest[0]);
    const size = Number(rest[1] ?? 100);
    const payload = new Uint8Array(size);
    const start = received;
    const t0 = wall();
    let sent = 0;
    const pump = (): void => {
      while (sent < n && m.multicast(payload)) sent++;
    };
    m.on("drain", pump);
    const check = (): void => {
      if (received - start >= n * Number(rest[2] ?? 1)) {
        m.off("message", check);
        out({ ev: "burst", n, size, ms: wall() - t0 });
        quiet = false;
      }
    };
    m.on("message", check);
    pump();
  } else if (cmd === "busy") {
    const until = performance.now() + Number(rest[0]);
    while (performance.now() < until) {
      /* block the event loop, like a long GC pause */
    }
    out({ ev: "busy-done", t: wall() });
  } else if (cmd === "leave") {
    void m.leave();
  } else if (cmd === "stats") {
    out({ ev: "stats", stats: m.core.stats, view: m.view?.key, members: m.view?.members });
  }
});
rl.on("close", () => {
  // the parent went away: behave like a crash (no leave)
  void m.close();
  process.exit(0);
});
