/**
 * One membership member (`UdpMember`) in its own process, driven by the fuzzer over the IPC
 * channel: `{ cmd: "status" }` answers the view, the counters and the RSS; `{ cmd: "stop" }` leaves.
 * Started by `startMember` (procs.ts) with the options as JSON in argv[2].
 */

import type { Timing } from "@spines-ts/membership";
import { UdpMember } from "@spines-ts/membership/udp";

export interface MemberArgs {
  id: number;
  port: number;
  group: string;
  peers: { id: number; host: string; port: number }[];
  timing?: Partial<Timing>;
}

export interface MemberStatus {
  id: number;
  pid: number;
  view: { key: string; members: number[] } | null;
  views: number;
  stats: Record<string, number>;
  host: Record<string, number>;
  knownPeers: number;
  listenerErrors: number;
  rssBytes: number;
  uncaught: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as MemberArgs;
let uncaught = 0;
// A throw that escapes UdpMember would be a finding: count it, and report it before dying.
process.on("uncaughtException", (e) => {
  uncaught++;
  process.send?.({ uncaught: String(e?.stack ?? e) });
  process.exit(70);
});

const m = await UdpMember.start({
  id: args.id,
  group: args.group,
  bind: { host: "127.0.0.1", port: args.port },
  peers: args.peers,
  ...(args.timing ? { timing: args.timing } : {}),
});
let views = 0;
m.on("view", () => {
  views++;
});

function status(): MemberStatus {
  const v = m.view;
  const core = m.core as unknown as { stats: Record<string, number> };
  return {
    id: args.id,
    pid: process.pid,
    view: v ? { key: v.key, members: [...v.members] } : null,
    views,
    stats: { ...core.stats },
    host: { ...(m.host.stats as unknown as Record<string, number>) },
    knownPeers: m.host.peerCount,
    listenerErrors: m.listenerErrors,
    rssBytes: process.memoryUsage.rss(),
    uncaught,
  };
}

process.on("message", (msg: { cmd: string; seq: number }) => {
  if (msg.cmd === "status") process.send?.({ seq: msg.seq, status: status() });
  else if (msg.cmd === "stop") {
    void m.leave().then(() => process.exit(0));
  }
});
process.on("disconnect", () => {
  void m.close().then(() => process.exit(0));
});
process.send?.({ ready: true, port: m.port });
