/**
 * Several spawned daemons on loopback: a stream crosses the overlay, a transit daemon is killed
 * (SIGKILL) in the middle of it, and every byte still arrives exactly once and in order.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpinesClient, type SpinesStream } from "../src/client.ts";
import { freeUdpPorts, type Spawned, spawnDaemon, tmp, waitForAsync } from "./helpers.ts";

// A square: 1-2-4 and 1-3-4, so that losing 2 or 3 leaves a path.
const EDGES: [number, number][] = [
  [1, 2],
  [2, 4],
  [1, 3],
  [3, 4],
];
const dir = tmp();
const daemons = new Map<number, Spawned>();
let ports: number[] = [];

const sock = (id: number) => join(dir, `n${id}.sock`);
const ctlPath = (id: number) => join(dir, `n${id}.ctl`);

beforeAll(async () => {
  ports = await freeUdpPorts(4);
  const started = await Promise.all(
    [1, 2, 3, 4].map((id) => {
      const args = [
        "--id",
        String(id),
        "--listen",
        `127.0.0.1:${ports[id - 1]}`,
        "--control",
        ctlPath(id),
        "--client-socket",
        sock(id),
        "--log-level",
        "warn",
      ];
      for (const [a, b] of EDGES) {
        if (a === id) args.push("--neighbor", `${b}@127.0.0.1:${ports[b - 1]}`);
        if (b === id) args.push("--neighbor", `${a}@127.0.0.1:${ports[a - 1]}`);
      }
      return spawnDaemon(args, ctlPath(id), 30_000).then((d) => [id, d] as const);
    }),
  );
  for (const [id, d] of started) daemons.set(id, d);
}, 60_000);

afterAll(() => {
  for (const d of daemons.values()) if (d.proc.exitCode === null) d.proc.kill("SIGKILL");
});

async function routeTo(from: number, dst: number): Promise<{ nextHop: number; path: number[] } | undefined> {
  const c = await (daemons.get(from) as Spawned).ctl();
  try {
    const routes = await c.call<{ dst: number; nextHop: number; path: number[] }[]>("routes");
    return routes.find((r) => r.dst === dst);
  } finally {
    c.close();
  }
}

/** Byte i of the stream is (i * 7 + (i >> 11)) & 0xff: a gap, duplicate or swap shows up. */
function pattern(offset: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) {
    const x = offset + i;
    b[i] = (x * 7 + (x >>> 11)) & 0xff;
  }
  return b;
}

function writeAll(
  s: SpinesStream,
  total: number,
  chunk: number,
  onProgress: (sent: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk, total - sent);
        const ok = s.write(pattern(sent, n));
        sent += n;
        onProgress(sent);
        if (!ok) {
          s.once("drain", pump);
          return;
        }
      }
      s.end(() => resolve());
    };
    s.once("error", reject);
    pump();
  });
}

describe("overlay of spawned daemons", () => {
  it("brings links and routes up: every node reaches every other", async () => {
    const linkStates = async (id: number) => {
      const c = await (daemons.get(id) as Spawned).ctl();
      try {
        return (await c.call<{ neighbor: number; state: string }[]>("links")).map((l) => [
          l.neighbor,
          l.state,
        ]);
      } finally {
        c.close();
      }
    };
    for (const id of [1, 2, 3, 4]) {
      const want = EDGES.filter(([a, b]) => a === id || b === id)
        .map(([a, b]) => [a === id ? b : a, "up"])
        .sort((x, y) => (x[0] as number) - (y[0] as number));
      await waitForAsync(
        async () => JSON.stringify(await linkStates(id)) === JSON.stringify(want),
        `links of ${id} up`,
        15_000,
      );
    }
    for (const from of [1, 2, 3, 4]) {
      for (const dst of [1, 2, 3, 4]) {
        if (dst === from) continue;
        await waitForAsync(
          async () => (await routeTo(from, dst)) !== undefined,
          `a route ${from} -> ${dst}`,
          15_000,
        );
      }
    }
    const r = await routeTo(1, 4);
    expect(r?.path).toHaveLength(3);
    expect([2, 3]).toContain(r?.nextHop);
  });

  it("a stream survives the crash of its transit daemon: every byte once, in order", async () => {
    const TOTAL = 3 * 1024 * 1024;
    const receiver = await SpinesClient.connect({ path: sock(4) });
    const sender = await SpinesClient.connect({ path: sock(1) });
    const l = await receiver.listen(5000);
    const [s, peer] = await Promise.all([sender.connect(4, 5000), l.accept()]);
    const transit = (await routeTo(1, 4))?.nextHop as number;
    expect([2, 3]).toContain(transit);

    let received = 0;
    let mismatch = -1;
    let killed = false;
    const done = new Promise<void>((resolve, reject) => {
      peer.on("data", (b: Buffer) => {
        if (mismatch < 0) {
          const want = pattern(received, b.length);
          if (!want.equals(b)) {
            for (let i = 0; i < b.length; i++)
              if (want[i] !== b[i]) {
                mismatch = received + i;
                break;
              }
          }
        }
        received += b.length;
        if (!killed && received > TOTAL / 3) {
          killed = true;
          daemons.get(transit)?.proc.kill("SIGKILL");
        }
      });
      peer.once("end", () => resolve());
      peer.once("error", reject);
    });
    await writeAll(s, TOTAL, 16 * 1024, () => {});
    await done;
    expect(killed).toBe(true);
    expect(mismatch).toBe(-1);
    expect(received).toBe(TOTAL);
    const after = await routeTo(1, 4);
    expect(after?.nextHop).not.toBe(transit);
    peer.end();
    sender.close();
    receiver.close();
  }, 60_000);

  it("SIGTERM closes the node's sessions cleanly (the peer sees the end of the stream) and exits 0", async () => {
    const receiver = await SpinesClient.connect({ path: sock(4) });
    const sender = await SpinesClient.connect({ path: sock(1) });
    const l = await receiver.listen(5001);
    const [s, peer] = await Promise.all([sender.connect(4, 5001), l.accept()]);
    s.on("error", () => {}); // the daemon going away may end it with ERR_SHUTTING_DOWN
    let got = "";
    const ended = new Promise<void>((resolve, reject) => {
      peer.on("data", (b: Buffer) => {
        got += b.toString();
        if (got === "before shutdown") (daemons.get(1) as Spawned).proc.kill("SIGTERM");
      });
      peer.once("end", () => {
        peer.end();
        resolve();
      });
      peer.once("error", reject);
    });
    s.write("before shutdown");
    await ended;
    expect(got).toBe("before shutdown");
    const { code, signal } = await (daemons.get(1) as Spawned).exited;
    expect(signal).toBe(null);
    expect(code).toBe(0);
    receiver.close();
  }, 30_000);
});
