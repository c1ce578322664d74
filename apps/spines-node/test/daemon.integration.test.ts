import { createSocket, type Socket } from "node:dgram";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ControlClient } from "@spines-ts/daemon-kit";
import { BatchSocket } from "@spines-ts/node-host";
import { Rng } from "@spines-ts/primitives";
import { allMessageSpecs, DestKind, encode, HEADER_BYTES, MAGIC, VERSION } from "@spines-ts/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import { freeTcpPort, freeUdpPorts, type Spawned, spawnDaemon, tmp, waitForAsync } from "./helpers.ts";

const dir = tmp();
let d: Spawned;
let ctl: ControlClient;
let raw: Socket;
let rawPort: number;
let udpPort: number;
let metricsPort: number;
const cfgPath = join(dir, "node.yaml");

function writeConfig(logLevel: string, delayMs: number): void {
  writeFileSync(
    cfgPath,
    [
      "id: 1",
      `listen: 127.0.0.1:${udpPort}`,
      "neighbors:",
      "  - id: 2",
      `    address: 127.0.0.1:${rawPort}`,
      `    emulation: { delayMs: ${delayMs} }`,
      `logLevel: ${logLevel}`,
      `control: ${join(dir, "n1.ctl")}`,
      `clientSocket: ${join(dir, "n1.sock")}`,
      `metrics: 127.0.0.1:${metricsPort}`,
      "",
    ].join("\n"),
  );
}

beforeAll(async () => {
  raw = createSocket("udp4");
  await new Promise<void>((r) => raw.bind(0, "127.0.0.1", () => r()));
  rawPort = raw.address().port;
  [udpPort] = (await freeUdpPorts(1)) as [number];
  metricsPort = await freeTcpPort();
  writeConfig("info", 0);
  d = await spawnDaemon(["--config", cfgPath], join(dir, "n1.ctl"));
  ctl = await d.ctl();
});

afterAll(async () => {
  ctl?.close();
  raw?.close();
  if (d && d.proc.exitCode === null) d.proc.kill("SIGKILL");
});

describe("spines-node daemon (spawned)", () => {
  it("creates its control and client sockets with mode 0600", () => {
    expect(statSync(join(dir, "n1.ctl")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "n1.sock")).mode & 0o777).toBe(0o600);
  });

  it("answers every control command", async () => {
    const status = await ctl.call<{ id: number; udp: string; udpIo: string }>("status");
    expect(status.id).toBe(1);
    expect(status.udp).toBe(`127.0.0.1:${udpPort}`);
    // the batched socket whenever node-host's addon is built (CI builds it)
    expect(status.udpIo).toBe(BatchSocket.available ? "batch" : "dgram");
    const neighbors = await ctl.call<{ id: number; endpoint: string }[]>("neighbors");
    expect(neighbors.map((n) => [n.id, n.endpoint])).toEqual([[2, `127.0.0.1:${rawPort}`]]);
    const links = await ctl.call<{ neighbor: number }[]>("links");
    expect(links.map((l) => l.neighbor)).toEqual([2]);
    expect(Array.isArray(await ctl.call("routes"))).toBe(true);
    expect(Array.isArray(await ctl.call("groups"))).toBe(true);
    expect(await ctl.call("sessions")).toEqual([]);
    const set = await ctl.call("set-link", {
      neighbor: 2,
      emulation: { lossPct: 5, delayMs: 10, bandwidthKbps: 1000 },
    });
    expect(set).toEqual({ neighbor: 2, emulation: { lossPct: 5, delayMs: 10, bandwidthKbps: 1000 } });
    expect(await ctl.call("get-link", { neighbor: 2 })).toMatchObject({ emulation: { lossPct: 5 } });
    await ctl.call("set-link", { neighbor: 2, emulation: null });
    expect(await ctl.call("get-link", { neighbor: 2 })).toMatchObject({ emulation: null });
  });

  it("answers malformed control requests with typed errors and keeps serving", async () => {
    const cases: [string, string][] = [
      ["this is not json", "ERR_CONTROL_BAD_JSON"],
      ["[1,2,3]", "ERR_CONTROL_BAD_REQUEST"],
      ['{"id": 5}', "ERR_CONTROL_BAD_REQUEST"],
      ['{"cmd": 42}', "ERR_CONTROL_BAD_REQUEST"],
      ['{"cmd": "reboot"}', "ERR_CONTROL_UNKNOWN_COMMAND"],
      ['{"cmd": "set-link"}', "ERR_CONTROL_BAD_ARGUMENT"],
      ['{"cmd": "set-link", "neighbor": 77, "emulation": {}}', "ERR_CONTROL_BAD_ARGUMENT"],
      ['{"cmd": "set-link", "neighbor": 2, "emulation": {"lossPct": "lots"}}', "ERR_CONTROL_BAD_ARGUMENT"],
      ['{"cmd": "log-level", "level": "shout"}', "ERR_CONTROL_BAD_ARGUMENT"],
      [`{"cmd": "status", "pad": "${"x".repeat(70_000)}"}`, "ERR_CONTROL_LINE_TOO_LONG"],
    ];
    for (const [line, code] of cases) {
      const r = await ctl.raw(line);
      expect(r.ok, line.slice(0, 60)).toBe(false);
      expect(r.error?.code, line.slice(0, 60)).toBe(code);
    }
    const r = await ctl.request("ping");
    expect(r).toMatchObject({ ok: true, result: { pong: true } });
  });

  it("counts garbage UDP packets and keeps serving", async () => {
    const port = udpPort;
    const rng = new Rng(42);
    const N = 300;
    const send = (b: Uint8Array) => raw.send(b, port, "127.0.0.1");
    for (let i = 0; i < N; i++) send(rng.bytes(rng.intBetween(0, 200)));
    // Valid frames, but from the wrong sender id, or of a type the plane does not take.
    const frame = encode(
      { sender: 3, incarnation: 1 },
      {
        _tag: "Datagram",
        header: { src: 3, srcPort: 1, dst: 1, dstPort: 9, dstKind: DestKind.Node, ttl: 5 },
        payload: Uint8Array.of(1),
      },
    );
    send(frame);
    // Truncated and over-long versions of a valid frame.
    send(frame.subarray(0, frame.length - 1));
    send(Buffer.concat([frame, Uint8Array.of(0)]));
    const from = createSocket("udp4");
    await new Promise<void>((r) => from.bind(0, "127.0.0.1", () => r()));
    from.send(Uint8Array.of(1, 2, 3), port, "127.0.0.1"); // an unknown endpoint
    type Counters = {
      rxPackets: number;
      decodeErrors: number;
      senderMismatch: number;
      rxUnknownPeer: number;
    };
    let c: Counters = { rxPackets: 0, decodeErrors: 0, senderMismatch: 0, rxUnknownPeer: 0 };
    await waitForAsync(async () => {
      c = (await ctl.call<{ counters: Counters }>("status")).counters;
      return c.rxPackets >= N + 4;
    }, "the daemon to see every packet");
    from.close();
    expect(c.decodeErrors).toBe(N + 2);
    expect(c.senderMismatch).toBe(1);
    expect(c.rxUnknownPeer).toBe(1);
    expect(d.proc.exitCode).toBe(null);
    expect((await ctl.request("ping")).ok).toBe(true);
    const cl = await SpinesClient.connect({ path: join(dir, "n1.sock") });
    await cl.ping();
    cl.close();
  });

  it("survives well-formed headers with random bodies for every message type", async () => {
    const rng = new Rng(7);
    const before = (await ctl.call<{ counters: { rxPackets: number } }>("status")).counters.rxPackets;
    let n = 0;
    for (const spec of allMessageSpecs) {
      for (let i = 0; i < 40; i++) {
        const body = rng.bytes(rng.intBetween(0, 120));
        const f = new Uint8Array(HEADER_BYTES + body.length);
        const v = new DataView(f.buffer);
        v.setUint16(0, MAGIC);
        v.setUint8(2, VERSION);
        v.setUint8(3, spec.type);
        v.setUint16(6, body.length);
        v.setUint32(8, 2); // the peer's id: passes the sender check, reaches the cores
        v.setUint32(12, rng.uint32());
        f.set(body, HEADER_BYTES);
        raw.send(f, udpPort, "127.0.0.1");
        n++;
      }
    }
    await waitForAsync(
      async () =>
        (await ctl.call<{ counters: { rxPackets: number } }>("status")).counters.rxPackets >= before + n,
      "every fuzzed frame seen",
    );
    const c = (await ctl.call<{ counters: { rxHandlerErrors: number } }>("status")).counters;
    // Bad input never throws out of a core: nothing reached the host's last-resort catch.
    expect(c.rxHandlerErrors).toBe(0);
    expect(d.proc.exitCode).toBe(null);
    expect((await ctl.request("ping")).ok).toBe(true);
  });

  it("serves Prometheus metrics on loopback", async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/# TYPE spines_udp_rx_packets_total counter/);
    expect(text).toMatch(/spines_decode_errors_total\{node="1",code="ERR_WIRE_[A-Z_]+"\} \d+/);
    expect(text).toMatch(/spines_link_up\{node="1",neighbor="2"\} 0/);
  });

  it("SIGHUP reloads the log level and link emulation; a bad file on reload changes nothing", async () => {
    writeConfig("debug", 25);
    d.proc.kill("SIGHUP");
    await waitForAsync(
      async () => (await ctl.call<{ logLevel: string }>("status")).logLevel === "debug",
      "log level to change",
    );
    expect(await ctl.call("get-link", { neighbor: 2 })).toMatchObject({ emulation: { delayMs: 25 } });
    writeFileSync(cfgPath, "id: [\n");
    d.proc.kill("SIGHUP");
    await waitForAsync(
      async () => d.stderr().includes("configuration not reloaded"),
      "reload refusal logged",
    );
    expect((await ctl.call<{ logLevel: string }>("status")).logLevel).toBe("debug");
  });

  it("SIGTERM exits 0 and removes its sockets", async () => {
    d.proc.kill("SIGTERM");
    const { code, signal } = await d.exited;
    expect(signal).toBe(null);
    expect(code).toBe(0);
    expect(existsSync(join(dir, "n1.ctl"))).toBe(false);
    expect(existsSync(join(dir, "n1.sock"))).toBe(false);
  });
});

describe("spines-node startup errors", () => {
  it("a bad config file exits 2 with a message naming the file, line and key", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "id: 1\nneighbors:\n  - id: 2\n    address: 127.0.0.1:99999\n");
    const { spawn } = await import("node:child_process");
    const p = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "..", "src", "main.ts"), "--config", bad],
      {
        cwd: join(import.meta.dirname, ".."),
      },
    );
    let err = "";
    p.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    const code = await new Promise((r) => p.on("exit", r));
    expect(code).toBe(2);
    expect(err).toContain(`${bad}:4: neighbors[0].address: expected`);
  });
  it("a control socket held by a live process exits 1 and says so", async () => {
    const { createServer } = await import("node:net");
    const { spawn } = await import("node:child_process");
    const path = join(dir, "busy.ctl");
    const srv = createServer(() => {});
    await new Promise<void>((r) => srv.listen(path, () => r()));
    const [p] = (await freeUdpPorts(1)) as [number];
    const proc = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(import.meta.dirname, "..", "src", "main.ts"),
        "--id",
        "5",
        "--listen",
        `127.0.0.1:${p}`,
        "--control",
        path,
        "--client-socket",
        "none",
      ],
      { cwd: join(import.meta.dirname, "..") },
    );
    let err = "";
    proc.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    const code = await new Promise((r) => proc.on("exit", r));
    srv.close();
    expect(code).toBe(1);
    expect(err).toContain(`${path} is in use`);
  });
});
