import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { closeServer, listenTcp, listenUnix, refuse, SocketInUseError } from "../src/unix-socket.ts";

let dir: string;
const servers: Server[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "daemon-kit-unix-"));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await closeServer(s);
  rmSync(dir, { recursive: true, force: true });
});

function server(onConnection: (s: Socket) => void = () => {}): Server {
  const s = createServer(onConnection);
  servers.push(s);
  return s;
}

function readAll(path: string, send?: string): Promise<{ text: string }> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let text = "";
    c.setEncoding("utf8");
    c.on("data", (d: string) => {
      text += d;
    });
    c.on("error", reject);
    c.on("close", () => resolve({ text }));
    if (send !== undefined) c.write(send);
  });
}

describe("listenUnix", () => {
  it("creates the socket with mode 0600 (or the mode asked) whatever the umask", async () => {
    const old = process.umask(0);
    try {
      const a = join(dir, "a.sock");
      await listenUnix(server(), a);
      expect(statSync(a).isSocket()).toBe(true);
      expect(statSync(a).mode & 0o777).toBe(0o600);
      const b = join(dir, "b.sock");
      await listenUnix(server(), b, 0o660);
      expect(statSync(b).mode & 0o777).toBe(0o660);
    } finally {
      process.umask(old);
    }
  });

  it("replaces a stale socket file, refuses a live one and a file that is not a socket", async () => {
    const path = join(dir, "s.sock");
    const first = server();
    await listenUnix(first, path);
    await expect(listenUnix(server(), path)).rejects.toBeInstanceOf(SocketInUseError);
    // a daemon that died leaves its socket file behind: closing the handle without unlinking
    await new Promise<void>((r) => first.close(() => r()));
    writeFileSync(join(dir, "plain"), "x");
    await expect(listenUnix(server(), join(dir, "plain"))).rejects.toMatchObject({
      code: "ERR_NOT_A_SOCKET",
    });
  });

  it("closeServer removes the socket file", async () => {
    const path = join(dir, "c.sock");
    const s = server();
    await listenUnix(s, path);
    await closeServer(s, path);
    expect(() => statSync(path)).toThrow();
  });

  it("listenTcp resolves with the bound port", async () => {
    const port = await listenTcp(server(), "127.0.0.1", 0);
    expect(port).toBeGreaterThan(0);
  });
});

describe("refuse", () => {
  it("sends the farewell, ignores what the peer sends, and closes", async () => {
    const path = join(dir, "r.sock");
    await listenUnix(
      server((s) => refuse(s, "busy\n", 5_000)),
      path,
    );
    const r = await readAll(path, "x".repeat(1 << 20));
    expect(r.text).toBe("busy\n");
  });
});
