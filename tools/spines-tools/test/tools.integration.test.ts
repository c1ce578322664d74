/**
 * Every tool against real daemons (a line 1-2-3 on loopback), called in process through its
 * `main(argv, io)`: the happy path and a bad argument each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main as ping } from "../src/spines-ping.ts";
import { main as recv } from "../src/spines-recv.ts";
import { main as send } from "../src/spines-send.ts";
import { main as traceroute } from "../src/spines-traceroute.ts";
import { main as ctl } from "../src/spinesctl.ts";
import { captureIo, type Node, startOverlay, waitFor } from "./helpers.ts";

describe("spines tools on a line of three daemons 1-2-3", () => {
  let nodes: Map<number, Node>;
  let stop: () => Promise<void>;
  const n = (id: number) => nodes.get(id) as Node;
  const d = (id: number) => ["--daemon", n(id).socket];

  beforeAll(async () => {
    ({ nodes, stop } = await startOverlay(
      [1, 2, 3],
      [
        [1, 2],
        [2, 3],
      ],
    ));
  });
  afterAll(async () => {
    await stop?.();
  });

  describe("spinesctl", () => {
    it("prints status, neighbours, links, routes, groups and sessions, as text and JSON", async () => {
      const c = ["--control", n(2).control];
      let io = captureIo();
      expect(await ctl([...c, "status"], io)).toBe(0);
      expect(io.out()).toMatch(/^id:\s+2$/m);
      io = captureIo();
      expect(await ctl([...c, "neighbours", "--json"], io)).toBe(0);
      expect((JSON.parse(io.out()) as { id: number }[]).map((x) => x.id).sort()).toEqual([1, 3]);
      io = captureIo();
      expect(await ctl([...c, "routes"], io)).toBe(0);
      expect(io.out()).toMatch(/^DESTINATION\s+NEXT HOP\s+COST\s+PATH$/m);
      expect(io.out()).toMatch(/^3\s+3\s+\S+\s+2 > 3$/m);
      io = captureIo();
      expect(await ctl([...c, "links", "--json"], io)).toBe(0);
      expect(JSON.parse(io.out())).toHaveLength(2);
      expect((JSON.parse(io.out()) as { cost: number }[]).map((l) => l.cost)).toEqual([1, 1]);
      io = captureIo();
      expect(await ctl([...c, "links"], io)).toBe(0);
      expect(io.out()).toMatch(
        /^NEIGHBOUR\s+TYPE\s+STATE\s+RTT \(ms\)\s+LOSS\s+WINDOW\s+QUEUE\s+COST\s+ADVERTISED\s+EMULATION$/m,
      );
      for (const cmd of ["groups", "sessions", "ping"]) {
        io = captureIo();
        expect(await ctl([...c, cmd], io), cmd).toBe(0);
      }
    });

    it("sets, shows and clears link emulation", async () => {
      const c = ["--control", n(2).control];
      let io = captureIo();
      expect(
        await ctl([...c, "emulation", "set", "1", "--delay-ms", "5", "--loss-pct", "1", "--json"], io),
      ).toBe(0);
      expect(JSON.parse(io.out())).toMatchObject({ neighbor: 1, emulation: { delayMs: 5, lossPct: 1 } });
      io = captureIo();
      expect(await ctl([...c, "emulation", "get", "1", "--json"], io)).toBe(0);
      expect(JSON.parse(io.out())).toMatchObject({ emulation: { delayMs: 5 } });
      io = captureIo();
      expect(await ctl([...c, "emulation", "clear", "1", "--json"], io)).toBe(0);
      expect(JSON.parse(io.out())).toMatchObject({ neighbor: 1, emulation: null });
    });

    it("exits 2 on bad usage and 1 when the daemon refuses or is missing", async () => {
      let io = captureIo();
      expect(await ctl(["--control", n(2).control, "frobnicate"], io)).toBe(2);
      expect(io.err()).toMatch(/unknown command "frobnicate"\nTry 'spinesctl --help'/);
      io = captureIo();
      expect(await ctl(["--control", n(2).control, "emulation", "set", "1", "--loss-pct", "200"], io)).toBe(
        2,
      );
      io = captureIo();
      expect(await ctl(["--bogus"], io)).toBe(2);
      io = captureIo();
      expect(await ctl(["--control", n(2).control, "emulation", "get", "7"], io)).toBe(1);
      expect(io.err()).toMatch(/ERR_CONTROL_BAD_ARGUMENT/);
      io = captureIo();
      expect(await ctl(["--control", "/nonexistent.ctl", "status"], io)).toBe(1);
      expect(io.err()).toMatch(/ERR_DAEMON_UNAVAILABLE/);
    });
  });

  describe("spines-ping", () => {
    it("measures round trips to a node two hops away", async () => {
      const io = captureIo();
      expect(await ping([...d(1), "-c", "3", "-i", "20", "--json", "3"], io)).toBe(0);
      const r = JSON.parse(io.out()) as {
        sent: number;
        received: number;
        rttMs: { min: number; max: number };
      };
      expect(r.sent).toBe(3);
      expect(r.received).toBeGreaterThanOrEqual(1);
      expect(r.rttMs.min).toBeGreaterThan(0);
      expect(r.rttMs.max).toBeGreaterThanOrEqual(r.rttMs.min);
      const text = captureIo();
      expect(await ping([...d(1), "-c", "1", "3"], text)).toBe(0);
      expect(text.out()).toMatch(/^56 bytes from node 3: seq=1 time=[\d.]+ ms$/m);
    });

    it("exits 2 on a bad argument and 1 when nothing answers", async () => {
      let io = captureIo();
      expect(await ping([...d(1), "-s", "8", "3"], io)).toBe(2);
      expect(io.err()).toMatch(/--size must be an integer in 16\.\.65536/);
      io = captureIo();
      expect(await ping([...d(1)], io)).toBe(2);
      io = captureIo();
      expect(await ping([...d(1), "-c", "1", "-W", "300", "99"], io)).toBe(1);
      expect(io.out()).toMatch(/destination unreachable|no reply/);
    });
  });

  describe("spines-traceroute", () => {
    it("prints the path and a round trip per hop", async () => {
      const io = captureIo();
      expect(await traceroute([...d(1), "-q", "2", "--json", "3"], io)).toBe(0);
      const r = JSON.parse(io.out()) as {
        path: number[];
        hops: { node: number; rttMs: (number | null)[] }[];
      };
      expect(r.path).toEqual([1, 2, 3]);
      expect(r.hops.map((h) => h.node)).toEqual([2, 3]);
      for (const h of r.hops) expect(h.rttMs.some((x) => x !== null && x > 0)).toBe(true);
      const text = captureIo();
      expect(await traceroute([...d(1), "-q", "1", "3"], text)).toBe(0);
      expect(text.out()).toMatch(/^ 2 {2}node 3\s+[\d.]+ ms$/m);
    });

    it("exits 1 without a route and 2 on a bad argument", async () => {
      let io = captureIo();
      expect(await traceroute([...d(1), "99"], io)).toBe(1);
      expect(io.err()).toMatch(/ERR_UNREACHABLE/);
      io = captureIo();
      expect(await traceroute([...d(1), "-q", "0", "3"], io)).toBe(2);
    });
  });

  describe("spines-send and spines-recv", () => {
    /** Starts spines-recv and resolves once it is ready (its stderr says so). */
    async function startRecv(argv: string[]) {
      const io = captureIo();
      // A duration as a safety net: best-effort end-of-run datagrams could all be lost.
      const done = recv([...argv, "--duration", "60"], io);
      await waitFor(() => /receiving|listening/.test(io.err()), "spines-recv to be ready");
      return { io, done };
    }

    it("measures datagrams: latency, jitter, loss, throughput", async () => {
      const r = await startRecv([...d(3), "-p", "6000", "--json"]);
      const s = captureIo();
      expect(
        await send([...d(1), "-p", "6000", "-n", "200", "-s", "500", "-r", "2000", "--json", "3"], s),
      ).toBe(0);
      expect(JSON.parse(s.out())).toMatchObject({ mode: "datagram", messages: 200, bytes: 100_000 });
      expect(await r.done).toBe(0);
      const rep = JSON.parse(r.io.out());
      expect(rep).toMatchObject({ mode: "datagram", node: 3, from: { node: 1 } });
      expect(rep.messages.expected).toBe(200);
      expect(rep.messages.received + rep.messages.lost).toBe(200);
      expect(rep.messages.received).toBeGreaterThan(0);
      expect(rep.latencyMs.p50).toBeGreaterThan(0);
      expect(rep.latencyMs.max).toBeGreaterThanOrEqual(rep.latencyMs.p99);
      expect(rep.latencyMs.p99).toBeGreaterThanOrEqual(rep.latencyMs.p50);
      expect(rep.throughputMbps).toBeGreaterThan(0);
      expect(rep.jitterMs).toBeGreaterThanOrEqual(0);
    });

    it("measures a stream: every message arrives, with latency", async () => {
      const r = await startRecv([...d(3), "-p", "6001", "--stream", "--json"]);
      const s = captureIo();
      expect(await send([...d(1), "-p", "6001", "--stream", "-n", "300", "-s", "4000", "3"], s)).toBe(0);
      expect(s.out()).toMatch(
        /^sent 300 messages, 1200000 bytes in [\d.]+ s: [\d.]+ Mbit\/s offered \(stream, reliable links\)$/m,
      );
      expect(await r.done).toBe(0);
      const rep = JSON.parse(r.io.out());
      expect(rep.mode).toBe("stream");
      expect(rep.messages).toMatchObject({ received: 300, expected: 300, lost: 0, duplicates: 0 });
      expect(rep.bytes).toBe(1_200_000);
      expect(rep.latencyMs.mean).toBeGreaterThan(0);
    });

    it("multicasts to a group and prints a text summary", async () => {
      const r = await startRecv([...d(3), "-p", "6002", "-g", "300"]);
      // Wait until node 1 knows the member, then send.
      await waitFor(async () => {
        const io = captureIo();
        await ctl(["--control", n(1).control, "groups", "--json"], io);
        return io.out().includes('"members":[3]');
      }, "group 300 at node 1");
      const s = captureIo();
      expect(await send([...d(1), "-p", "6002", "-g", "300", "-n", "50", "-r", "500"], s)).toBe(0);
      expect(await r.done).toBe(0);
      expect(r.io.out()).toMatch(/^received \d+\/50 messages \([\d.]+% loss, 0 duplicates, \d+ reordered\)/m);
      expect(r.io.out()).toMatch(
        /^latency ms: mean [\d.]+ {2}p50 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+ {2}jitter [\d.]+$/m,
      );
    });

    it("sends anycast to the member of a group", async () => {
      const r = await startRecv([...d(3), "-p", "6004", "-g", "400", "--json"]);
      await waitFor(async () => {
        const io = captureIo();
        await ctl(["--control", n(1).control, "groups", "--json"], io);
        return io.out().includes('{"group":400,"members":[3]}');
      }, "group 400 at node 1");
      const s = captureIo();
      expect(
        await send([...d(1), "-p", "6004", "--anycast", "400", "-n", "20", "-r", "500", "--json"], s),
      ).toBe(0);
      expect(JSON.parse(s.out())).toMatchObject({ anycast: 400, messages: 20 });
      expect(await r.done).toBe(0);
      const rep = JSON.parse(r.io.out());
      expect(rep.from.node).toBe(1);
      expect(rep.messages.expected).toBe(20);
      expect(rep.messages.received).toBeGreaterThan(0);
    });

    it("stops spines-recv on its signal with nothing received: exit 1", async () => {
      const io = captureIo();
      const done = recv([...d(2), "-p", "6003", "--json"], io);
      await waitFor(() => /receiving/.test(io.err()), "spines-recv to be ready");
      io.abort();
      expect(await done).toBe(1);
      expect(JSON.parse(io.out()).messages.received).toBe(0);
    });

    it("exits 2 on bad arguments", async () => {
      for (const argv of [
        ["--stream", "--datagram", "3"],
        ["-g", "5", "--stream"],
        ["-s", "10", "3"],
        ["-p", "70000", "3"],
        ["--rate", "0", "3"],
        ["--link", "fast", "3"],
        [],
      ]) {
        const io = captureIo();
        expect(await send([...d(1), ...argv], io), argv.join(" ")).toBe(2);
      }
      for (const argv of [["-p", "0"], ["--stream", "-g", "4"], ["extra"], ["-n", "0"]]) {
        const io = captureIo();
        expect(await recv([...d(1), ...argv], io), argv.join(" ")).toBe(2);
      }
    });

    it("exits 1 when the session is refused", async () => {
      const io = captureIo();
      expect(await send([...d(1), "--stream", "-p", "6999", "-n", "1", "3"], io)).toBe(1);
      expect(io.err()).toMatch(/ERR_REFUSED/);
    });
  });
});
