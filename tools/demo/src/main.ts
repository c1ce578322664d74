/**
 * `pnpm demo`: the real daemon, on loopback, without root. Five `spines-node` processes in a line,
 * 1 - 2 - 3 - 4 - 5 (H = 4 hops), every link emulated by the daemons themselves (10 ms one way, 2 %
 * independent loss, each direction). Node 1 sends a stream of 1 KB messages to node 5 at 100 per
 * second, twice:
 *
 * - over hop-by-hop reliable links (`LinkType.Reliable`): each hop recovers its own losses (Spines);
 * - over best-effort links (`LinkType.BestEffort`): only the end-to-end session recovers losses.
 *
 * It prints the one-way latency of each message as the receiving client sees it (in order: a stream),
 * mean, p99 and jitter (mean |L(i) − L(i−1)|), and messages delivered, beside the latency model
 * (`@spines-ts/netlab` latency-model, ordered delivery) and the closed-form means
 * hop-by-hop E = H·(d + (p/q)·2d) and end-to-end E = H·d + ((1 − q^H)/q^H)·T_e with T_e = 2·H·d.
 *
 * Links run the rate-capped mode (`link.congestion: { kind: rate }`): a fixed-rate link, no window to
 * shrink on loss. The default TCP-fair (NewReno) links behave as TCP would and carry only about
 * 100–340 msgs/s of 1 KB on a 4 × 10 ms path at 1 % loss; at 2 % loss a 100 msgs/s stream would
 * measure the congestion window rather than the recovery scheme.
 *
 * `--tcp-fair` runs the default links instead, to see the difference.
 * `--short` (or DEMO_SHORT=1) sends 150 messages per run instead of 1000 (the test uses it).
 * Everything is stopped (SIGTERM) and the temporary folder removed on exit, also on Ctrl-C.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinkType, SpinesClient, type SpinesStream } from "@spines-ts/client";
import { simulate } from "@spines-ts/netlab";

if (process.argv[2] === "failover") {
  // `pnpm demo failover`: wackamole-node fail-over in network namespaces (./failover.ts)
  const { runFailoverDemo } = await import("./failover.ts");
  process.exit(await runFailoverDemo(process.argv.slice(3)));
}

const SHORT = process.argv.includes("--short") || process.env.DEMO_SHORT === "1";
/** `--tcp-fair`: run the default TCP-fair (NewReno) links instead of the rate-capped mode. */
const TCP_FAIR = process.argv.includes("--tcp-fair");
const NODES = 5;
const HOPS = NODES - 1;
const DELAY_MS = 10;
const LOSS_PCT = 2;
const RATE = 100; // messages per second
const MESSAGE_BYTES = 1024;
const MESSAGES = SHORT ? 150 : 1000;
/** The links' fixed rate: 1 MB/s, ten times the stream. */
const LINK_RATE_BYTES_PER_MS = 1000;
const PORT = 9000;
const BIN = join(import.meta.dirname, "..", "..", "..", "apps", "spines-node", "bin", "spines-node.js");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freeUdpPorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createSocket("udp4");
      await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
      return s;
    }),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

interface Daemon {
  readonly proc: ChildProcess;
  readonly socket: string;
  readonly exited: Promise<void>;
  stderr: string;
}

const dir = mkdtempSync(join(tmpdir(), "spines-demo-"));
const daemons: Daemon[] = [];

async function startDaemons(): Promise<void> {
  const ports = await freeUdpPorts(NODES);
  const emulation = `{ delayMs: ${DELAY_MS}, lossPct: ${LOSS_PCT} }`;
  for (let i = 0; i < NODES; i++) {
    const id = i + 1;
    const neighbours: string[] = [];
    for (const j of [i - 1, i + 1]) {
      if (j < 0 || j >= NODES) continue;
      neighbours.push(`  - { id: ${j + 1}, address: "127.0.0.1:${ports[j]}", emulation: ${emulation} }`);
    }
    const socket = join(dir, `n${id}.sock`);
    const file = join(dir, `n${id}.yaml`);
    writeFileSync(
      file,
      [
        `id: ${id}`,
        `listen: 127.0.0.1:${ports[i]}`,
        `control: ${join(dir, `n${id}.ctl`)}`,
        `clientSocket: ${socket}`,
        "logLevel: warn",
        TCP_FAIR ? "" : `link: { congestion: { kind: rate, rateBytesPerMs: ${LINK_RATE_BYTES_PER_MS} } }`,
        "neighbors:",
        ...neighbours,
        "",
      ].join("\n"),
    );
    const proc = spawn(process.execPath, [BIN, "--config", file], { stdio: ["ignore", "ignore", "pipe"] });
    const d: Daemon = {
      proc,
      socket,
      stderr: "",
      exited: new Promise((r) => proc.once("exit", () => r())),
    };
    proc.stderr?.on("data", (b: Buffer) => {
      d.stderr = (d.stderr + b.toString()).slice(-4000);
    });
    daemons.push(d);
  }
}

async function stopDaemons(): Promise<void> {
  for (const d of daemons) if (d.proc.exitCode === null) d.proc.kill("SIGTERM");
  await Promise.race([Promise.all(daemons.map((d) => d.exited)), sleep(5000)]);
  for (const d of daemons) if (d.proc.exitCode === null) d.proc.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

async function connectClient(d: Daemon, deadline: number): Promise<SpinesClient> {
  for (;;) {
    try {
      return await SpinesClient.connect({ path: d.socket });
    } catch (e) {
      if (d.proc.exitCode !== null) throw new Error(`spines-node exited:\n${d.stderr}`);
      if (Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

async function waitForRoute(c: SpinesClient, dst: number, deadline: number): Promise<number[]> {
  for (;;) {
    try {
      const r = await c.route(dst);
      if (r.path.length === NODES) return r.path;
    } catch {
      // no route yet
    }
    if (Date.now() > deadline) throw new Error(`no route to node ${dst} after startup`);
    await sleep(50);
  }
}

interface Measured {
  latencies: number[];
  delivered: number;
}

/** Sends MESSAGES records of MESSAGE_BYTES at RATE over a new stream; returns the receiver's view. */
async function run(tx: SpinesClient, rx: SpinesClient, port: number, link: LinkType): Promise<Measured> {
  const listener = await rx.listen(port, { link });
  const [out, inc] = (await Promise.all([tx.connect(NODES, port, { link }), listener.accept()])) as [
    SpinesStream,
    SpinesStream,
  ];
  const latencies: number[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let expected = 0;
  let misordered = 0;
  const done = new Promise<void>((resolve) => {
    inc.on("data", (chunk: Buffer) => {
      const now = performance.now();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= MESSAGE_BYTES) {
        const seq = pending.readUInt32BE(0);
        if (seq !== expected) misordered++;
        expected = seq + 1;
        latencies.push(now - pending.readDoubleBE(4));
        pending = pending.subarray(MESSAGE_BYTES);
      }
    });
    inc.once("end", () => resolve());
  });
  const start = performance.now();
  for (let i = 0; i < MESSAGES; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const msg = Buffer.alloc(MESSAGE_BYTES);
    msg.writeUInt32BE(i, 0);
    msg.writeDoubleBE(performance.now(), 4);
    out.write(msg);
  }
  out.end();
  await done;
  await listener.close();
  if (misordered > 0) throw new Error(`${misordered} messages out of order on a stream`);
  return { latencies, delivered: latencies.length };
}

function stats(xs: number[]): { mean: number; p99: number; jitter: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const p99 = s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)] ?? Number.NaN;
  let j = 0;
  for (let i = 1; i < xs.length; i++) j += Math.abs((xs[i] as number) - (xs[i - 1] as number));
  return { mean, p99, jitter: j / Math.max(1, xs.length - 1) };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const deadline = t0 + 90_000; // startup on a loaded machine: five processes compile TypeScript
  await startDaemons();
  const tx = await connectClient(daemons[0] as Daemon, deadline);
  const rx = await connectClient(daemons[NODES - 1] as Daemon, deadline);
  const path = await waitForRoute(tx, NODES, deadline);
  process.stdout.write(
    `spines-demo: ${NODES} spines-node daemons on 127.0.0.1, path ${path.join(" - ")} (H = ${HOPS}), ` +
      `every link ${DELAY_MS} ms one way and ${LOSS_PCT} % loss each direction (the daemons' emulation).\n` +
      (TCP_FAIR
        ? "links: the default TCP-fair (NewReno) mode, which carries about 100-340 msgs/s of 1 KB on a 4 x 10 ms path at 1 % loss, as TCP would.\n"
        : `links: rate-capped mode (congestion: rate, ${LINK_RATE_BYTES_PER_MS} bytes/ms); the default ` +
          "TCP-fair (NewReno) links carry about 100-340 msgs/s of 1 KB on a 4 x 10 ms path at 1 % loss, as TCP would (--tcp-fair).\n") +
      `stream: ${MESSAGES} messages of ${MESSAGE_BYTES} bytes at ${RATE}/s from node 1 to node ${NODES}, ` +
      "latency as the receiving client sees it (in order).\n\n",
  );
  const hop = await run(tx, rx, PORT, LinkType.Reliable);
  const e2e = await run(tx, rx, PORT + 1, LinkType.BestEffort);
  tx.close();
  rx.close();

  const d = DELAY_MS;
  const p = LOSS_PCT / 100;
  const q = 1 - p;
  const te = 2 * HOPS * d;
  const formula = {
    hop: HOPS * (d + (p / q) * 2 * d),
    e2e: HOPS * d + ((1 - q ** HOPS) / q ** HOPS) * te,
  };
  const params = { hops: HOPS, delayMs: d, loss: p, rate: RATE, gapMs: 0, n: 100_000, seed: 1 };
  const model = {
    hop: simulate("hop-by-hop", params).ordered,
    e2e: simulate("e2e-ideal", params).ordered,
  };
  const header = [
    "recovery",
    "link type",
    "mean ms",
    "p99 ms",
    "jitter ms",
    "delivered",
    "model mean / p99 ms",
    "formula E ms",
  ];
  const rows = [header];
  for (const [name, link, m, mod, e] of [
    ["hop-by-hop", "reliable", hop, model.hop, formula.hop],
    ["end-to-end", "best-effort", e2e, model.e2e, formula.e2e],
  ] as const) {
    const s = stats(m.latencies);
    rows.push([
      name,
      link,
      s.mean.toFixed(1),
      s.p99.toFixed(1),
      s.jitter.toFixed(1),
      `${m.delivered}/${MESSAGES}`,
      `${mod.meanMs.toFixed(1)} / ${mod.p99Ms.toFixed(1)}`,
      e.toFixed(1),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")}\n`);
  process.stdout.write(
    `\nmodel: latency-model of @spines-ts/netlab (ordered delivery, independent loss, recovery after one ` +
      `link or path round trip); formula: hop-by-hop E = H(d + (p/q)2d), end-to-end E = Hd + ((1-q^H)/q^H)T_e, ` +
      `T_e = 2Hd = ${te} ms. Measured figures include the daemons' own processing on a shared machine.\n` +
      `done in ${((Date.now() - t0) / 1000).toFixed(1)} s; all daemons stopped.\n`,
  );
}

let stopping = false;
const stopOnSignal = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  void stopDaemons().then(() => process.exit(signal === "SIGINT" ? 130 : 143));
};
process.once("SIGINT", () => stopOnSignal("SIGINT"));
process.once("SIGTERM", () => stopOnSignal("SIGTERM"));

let code = 0;
try {
  await main();
} catch (e) {
  process.stderr.write(`spines-demo: ${(e as Error).message}\n`);
  for (const [i, d] of daemons.entries())
    if (d.stderr !== "") process.stderr.write(`node ${i + 1}:\n${d.stderr}\n`);
  code = 1;
}
await stopDaemons();
process.exit(code);
