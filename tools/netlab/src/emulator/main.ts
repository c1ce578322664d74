/**
 * The link-emulator process: one per testbed, carrying every emulated link. Each link end is a socat
 * process bridging a TUN device (inside a host's namespace) to a UDP port on 127.0.0.1; this process
 * owns one UDP socket per link end, and forwards each datagram to the other end after the
 * {@link Direction} decided its fate. Pending deliveries sit in one {@link TimerHeap} served by a single
 * timer. A JSON-over-UDP control socket on 127.0.0.1 changes link parameters at run time
 * (faults) and reports counters.
 *
 * usage: node --import tsx main.ts <config.json>   (prints one line "READY <controlPort>" on stdout)
 */
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { monoMs, PreciseTimer } from "@spines-ts/node-host";
import { checkParams, Direction, type LinkParams, TimerHeap } from "./core.ts";

export interface EmulatorLinkConfig {
  id: string;
  /** Port this process binds for end a / b (socat of that end sends here). */
  portA: number;
  portB: number;
  /** Port the socat of end a / b binds (this process sends there). */
  peerA: number;
  peerB: number;
  /** Parameters of a→b and b→a. */
  ab: LinkParams;
  ba: LinkParams;
  seed: number;
}

export interface EmulatorConfig {
  links: EmulatorLinkConfig[];
  /** Control port to bind (0 = any). */
  controlPort?: number;
}

export type ControlRequest =
  | { op: "ping" }
  | { op: "set"; link: string; dir?: "ab" | "ba" | "both"; params: LinkParams }
  | { op: "stats" }
  | { op: "exit" };

interface Pending {
  out: Socket;
  port: number;
  data: Buffer;
  dir: Direction;
}

const LOCAL = "127.0.0.1";
/**
 * Deliver what is due within this much after the timer fires (one wake-up for packets due within
 * a few tens of µs of each other). The timer itself is precise to about 0.1 ms ({@link PreciseTimer}).
 */
const EARLY_MS = 0.03;
/** Socket buffers: absorb scheduling stalls of a busy machine instead of dropping (capped by net.core.rmem_max). */
const BUF = 4 << 20;

function main(): void {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write("usage: main.ts <config.json>\n");
    process.exit(2);
  }
  const cfg = JSON.parse(readFileSync(file, "utf8")) as EmulatorConfig;
  const heap = new TimerHeap<Pending>(200_000);
  const links = new Map<string, { ab: Direction; ba: Direction }>();
  const now = monoMs;

  const flush = () => {
    const limit = now() + EARLY_MS;
    for (let t = heap.peekTime(); t !== undefined && t <= limit; t = heap.peekTime()) {
      const p = heap.pop() as Pending;
      p.out.send(p.data, p.port, LOCAL);
    }
    timer.arm(heap.peekTime() ?? Number.POSITIVE_INFINITY);
  };
  const timer = new PreciseTimer(flush);

  let bound = 0;
  const sockets: Socket[] = [];
  const total = cfg.links.length * 2 + 1;
  const onBound = () => {
    bound++;
    if (bound === total) process.stdout.write(`READY ${(control.address() as { port: number }).port}\n`);
  };
  const fail = (what: string, e: unknown) => {
    process.stderr.write(`netlab emulator: ${what}: ${String(e)}\n`);
    process.exit(1);
  };

  for (const l of cfg.links) {
    const ab = new Direction(l.ab, l.seed * 2 + 1);
    const ba = new Direction(l.ba, l.seed * 2 + 2);
    links.set(l.id, { ab, ba });
    const sa = createSocket({ type: "udp4", recvBufferSize: BUF, sendBufferSize: BUF });
    const sb = createSocket({ type: "udp4", recvBufferSize: BUF, sendBufferSize: BUF });
    sockets.push(sa, sb);
    const wire = (inSock: Socket, out: Socket, peer: number, dir: Direction) => {
      inSock.on("message", (data) => {
        const t = now();
        const at = dir.admit(t, data.length);
        if (at === undefined) return;
        if (at <= t && heap.size === 0) {
          out.send(data, peer, LOCAL);
          return;
        }
        if (!heap.push(at, { out, port: peer, data, dir })) return;
        if (at < timer.at) timer.arm(at);
      });
      inSock.on("error", (e) => fail(`link ${l.id}`, e));
    };
    wire(sa, sb, l.peerB, ab);
    wire(sb, sa, l.peerA, ba);
    sa.bind(l.portA, LOCAL, onBound);
    sb.bind(l.portB, LOCAL, onBound);
  }

  const control = createSocket("udp4");
  control.on("error", (e) => fail("control", e));
  control.on("message", (msg, rinfo) => {
    let reply: unknown;
    try {
      const req = JSON.parse(msg.toString("utf8")) as ControlRequest;
      if (req.op === "ping") reply = { ok: true };
      else if (req.op === "stats") {
        const out: Record<string, unknown> = {};
        for (const [id, l] of links) out[id] = { ab: l.ab.stats, ba: l.ba.stats, pending: heap.size };
        reply = { ok: true, stats: out };
      } else if (req.op === "set") {
        const l = links.get(req.link);
        const problems = checkParams(req.params ?? {});
        if (l === undefined) reply = { ok: false, error: `no link ${req.link}` };
        else if (problems.length > 0) reply = { ok: false, error: problems.join("; ") };
        else {
          if (req.dir !== "ba") l.ab.update(req.params);
          if (req.dir !== "ab") l.ba.update(req.params);
          reply = { ok: true };
        }
      } else if (req.op === "exit") {
        reply = { ok: true };
        setTimeout(() => process.exit(0), 10);
      } else reply = { ok: false, error: "unknown op" };
    } catch (e) {
      reply = { ok: false, error: String(e) };
    }
    control.send(JSON.stringify(reply), rinfo.port, rinfo.address);
  });
  control.bind(cfg.controlPort ?? 0, LOCAL, onBound);
  process.on("SIGTERM", () => process.exit(0));
}

main();
