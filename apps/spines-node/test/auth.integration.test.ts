/**
 * Authenticated overlay datagrams on real daemons over loopback UDP (docs/security.md): daemons with
 * the same key talk; one with another key is dropped and counted; forged datagrams from a
 * neighbour's address (unsigned, all-zero MAC, unknown key id) and replays are dropped before decoding
 * and counted; the CLI makes key files (--gen-key, mode 0600) and refuses bad ones with the line.
 */
import { spawnSync } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemoryLogger } from "@spines-ts/primitives";
import { DestKind, encode } from "@spines-ts/wire";
import { generateKeyFile, parseKeyFile } from "@spines-ts/wire/auth";
import { afterAll, describe, expect, it } from "vitest";
import { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, spawnDaemon, tmp, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dirname, "..", "src", "main.ts");
const started: SpinesDaemon[] = [];
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.close();
  for (const d of started) await d.stop();
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd: join(import.meta.dirname, ".."),
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

type AuthCounters = {
  unsigned: number;
  unknownKey: number;
  badMac: number;
  replay: number;
  accepted: number;
};
const authOf = (d: SpinesDaemon) =>
  (d.status().counters as { auth: AuthCounters | null }).auth as AuthCounters;
const linkUp = (d: SpinesDaemon, peer: number) => d.neighbors().find((n) => n.id === peer)?.state === "up";

describe("authenticated links (real daemons on loopback)", () => {
  it("same key: links up; wrong key, forged, zero-MAC and replayed datagrams are dropped and counted", async () => {
    const dir = tmp();
    const key = join(dir, "overlay.key");
    const wrong = join(dir, "wrong.key");
    writeFileSync(key, generateKeyFile(), { mode: 0o600 });
    writeFileSync(wrong, generateKeyFile(), { mode: 0o600 });
    const [p1, p2, p3, p4] = (await freeUdpPorts(4)) as [number, number, number, number];
    const log = new MemoryLogger();
    // node 4 is a raw socket at a configured neighbour's address: the attacker's vantage point
    const n1 = await SpinesDaemon.start({
      config: {
        ...inProcessConfig(dir, 1, p1, [
          [2, p2],
          [3, p3],
          [4, p4],
        ]),
        keyFile: key,
      },
      log,
    });
    started.push(n1);
    const n2 = await SpinesDaemon.start({
      config: { ...inProcessConfig(dir, 2, p2, [[1, p1]]), keyFile: key },
      log: new MemoryLogger(),
    });
    started.push(n2);
    const n3 = await SpinesDaemon.start({
      config: { ...inProcessConfig(dir, 3, p3, [[1, p1]]), keyFile: wrong },
      log: new MemoryLogger(),
    });
    started.push(n3);
    expect(log.records.some((r) => (r.msg ?? "").includes("authenticated"))).toBe(true);
    expect(log.records.some((r) => r.level === "warn" && (r.msg ?? "").includes("UNAUTHENTICATED"))).toBe(
      false,
    );
    expect(n1.status().auth).toMatchObject({ enabled: true, keyIds: [1] });

    await waitFor(() => linkUp(n1, 2) && linkUp(n2, 1), "the link 1-2 (same key)", 15_000);
    // node 3 says hello ten times a second under the wrong key (same key id 1): bad MACs
    await waitFor(() => authOf(n1).badMac >= 5, "node 1 counting node 3's bad MACs", 15_000);
    expect(linkUp(n1, 3)).toBe(false);
    expect(linkUp(n3, 1)).toBe(false);
    expect(authOf(n3).badMac).toBeGreaterThan(0);
    expect(authOf(n3).accepted).toBe(0);

    // forged datagrams from node 4's address
    const s = createSocket("udp4");
    sockets.push(s);
    await new Promise<void>((r) => s.bind(p4, "127.0.0.1", () => r()));
    const dg = encode(
      { sender: 4, incarnation: 0x01020304 },
      {
        _tag: "Datagram",
        header: { src: 4, srcPort: 1, dst: 1, dstPort: 1, dstKind: DestKind.Node, ttl: 8 },
        payload: new Uint8Array(8),
      },
    );
    const zeroMac = parseKeyFile(readFileSync(key, "utf8")).sign(dg, Date.now() * 1000);
    zeroMac.fill(0, zeroMac.length - 16);
    const otherId = parseKeyFile(`7 ${"ab".repeat(32)}`).sign(dg, Date.now() * 1000);
    const before = authOf(n1);
    const send = (b: Uint8Array) => new Promise<void>((r) => s.send(b, p1, "127.0.0.1", () => r()));
    for (let i = 0; i < 20; i++) {
      await send(dg);
      await send(zeroMac);
      await send(otherId);
    }
    await waitFor(() => authOf(n1).unsigned - before.unsigned >= 20, "unsigned datagrams counted");
    await waitFor(() => authOf(n1).unknownKey - before.unknownKey >= 20, "unknown-key datagrams counted");
    await waitFor(() => authOf(n1).badMac - before.badMac >= 20, "zero-MAC datagrams counted");
    // none reached node 1's link to node 4, nor its decoder
    expect(n1.neighbors().find((n) => n.id === 4)?.rxFrames).toBe(0);
    expect(n1.node.plane.counters.decodeErrors).toBe(0);

    // a genuine frame of node 2, replayed from node 2's address, is counted as a replay
    const captured: Uint8Array[] = [];
    n2.host.tap = (tx, data) => {
      if (tx && captured.length < 5) captured.push(data.slice());
    };
    await waitFor(() => captured.length >= 5, "frames of node 2 captured");
    n2.host.tap = undefined;
    const r0 = authOf(n1).replay;
    // node 2's socket is the only one at its address; send the copies from it
    for (const f of captured) n2.host.sendToEndpoint({ address: "127.0.0.1", port: p1 }, f);
    await waitFor(() => authOf(n1).replay - r0 >= 1, "replays counted");
    expect(linkUp(n1, 2)).toBe(true);
    // the metrics name every drop reason
    const m = n1.metrics().find((x) => x.name === "spines_auth_dropped_total");
    expect(m?.samples.find((x) => x.labels?.reason === "badMac")?.value).toBeGreaterThan(20);
  });

  it("without a key the daemon warns at start that its links are unauthenticated", async () => {
    const dir = tmp();
    const [p] = (await freeUdpPorts(1)) as [number];
    const log = new MemoryLogger();
    const d = await SpinesDaemon.start({ config: inProcessConfig(dir, 1, p), log });
    started.push(d);
    expect(log.records.some((r) => r.level === "warn" && (r.msg ?? "").includes("UNAUTHENTICATED"))).toBe(
      true,
    );
    expect(d.status().auth).toEqual({ enabled: false });
    expect((d.status().counters as { auth: unknown }).auth).toBeNull();
  });

  it("spines-node --gen-key writes a 0600 key file, never overwrites; a bad key file is refused with its line", async () => {
    const dir = tmp();
    const file = join(dir, "k");
    const r = run(["--gen-key", file]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(parseKeyFile(readFileSync(file, "utf8")).current.key.length).toBe(32);
    const again = run(["--gen-key", file]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain("exists");
    const bad = join(dir, "bad");
    writeFileSync(bad, `# keys\n1 ${"ab".repeat(31)}\n`);
    const [p] = (await freeUdpPorts(1)) as [number];
    const b = run([
      "--listen",
      `127.0.0.1:${p}`,
      "--id",
      "1",
      "--control",
      join(dir, "c.ctl"),
      "--key-file",
      bad,
    ]);
    expect(b.status).toBe(2);
    expect(b.stderr).toContain(`${bad}:2`);
    expect(b.stderr).not.toContain("ab".repeat(31));
  }, 300_000);

  it("two spawned daemons with --key-file bring their link up", async () => {
    const dir = tmp();
    const key = join(dir, "k");
    expect(run(["--gen-key", key]).status).toBe(0);
    const [pa, pb] = (await freeUdpPorts(2)) as [number, number];
    const args = (id: number, me: number, peer: number, pid: number) => [
      "--id",
      String(id),
      "--listen",
      `127.0.0.1:${me}`,
      "--neighbor",
      `${pid}@127.0.0.1:${peer}`,
      "--control",
      join(dir, `${id}.ctl`),
      "--client-socket",
      "none",
      "--key-file",
      key,
    ];
    // both at once: under load a tsx start alone can take 20 s
    const both = await Promise.allSettled([
      spawnDaemon(args(1, pa, pb, 2), join(dir, "1.ctl"), 90_000),
      spawnDaemon(args(2, pb, pa, 1), join(dir, "2.ctl"), 90_000),
    ]);
    const failed = both.find((r) => r.status === "rejected");
    if (failed !== undefined) {
      for (const r of both) if (r.status === "fulfilled") r.value.proc.kill("SIGKILL");
      throw (failed as PromiseRejectedResult).reason;
    }
    const [a, b] = both.map(
      (r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof spawnDaemon>>>).value,
    ) as [Awaited<ReturnType<typeof spawnDaemon>>, Awaited<ReturnType<typeof spawnDaemon>>];
    try {
      const c = await a.ctl();
      try {
        let up = false;
        for (let i = 0; i < 200 && !up; i++) {
          const r = await c.request("neighbors");
          up = JSON.stringify(r).includes('"up"');
          if (!up) await new Promise((res) => setTimeout(res, 50));
        }
        expect(up).toBe(true);
        const st = (await c.request("status")) as { ok: boolean; result?: Record<string, unknown> };
        const text = JSON.stringify(st);
        expect(text).toContain('"enabled":true');
        expect(text).toMatch(/"accepted":[1-9]/);
      } finally {
        c.close();
      }
      expect(a.stderr()).not.toContain("UNAUTHENTICATED");
    } finally {
      a.proc.kill("SIGTERM");
      b.proc.kill("SIGTERM");
      await Promise.all([a.exited, b.exited]);
    }
  }, 300_000);
});
