/**
 * spinesctl's control client (daemon-kit's ControlClient underneath): every failure a caller sees is
 * a ControlError with a code, against a scripted socket that answers each request line with `reply`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ControlClient, ControlError } from "../src/control.ts";

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function serve(reply: (line: string, sock: Socket) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "st-ctl-"));
  const path = join(dir, "c.ctl");
  const server: Server = createServer((sock) => {
    sock.setEncoding("utf8");
    let buf = "";
    sock.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        reply(line, sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  cleanup.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return path;
}

describe("ControlClient", () => {
  it("sends the command with its arguments and resolves with the result", async () => {
    const path = await serve((line, sock) => {
      const req = JSON.parse(line) as { id: number; cmd: string; level?: string };
      sock.write(`${JSON.stringify({ id: req.id, ok: true, result: { cmd: req.cmd, level: req.level } })}\n`);
    });
    const c = await ControlClient.connect(path);
    await expect(c.call("log-level", { level: "debug" })).resolves.toEqual({
      cmd: "log-level",
      level: "debug",
    });
    c.close();
  });

  it("rejects with ERR_DAEMON_UNAVAILABLE naming the path when nothing listens", async () => {
    const e = await ControlClient.connect("/nonexistent/spines.ctl").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ControlError);
    expect(e).toMatchObject({ code: "ERR_DAEMON_UNAVAILABLE" });
    expect((e as Error).message).toMatch(
      /^cannot reach the spines-node control socket at \/nonexistent\/spines\.ctl: /,
    );
  });

  it("rejects a refused command with the reply's code and message", async () => {
    const path = await serve((line, sock) => {
      const { id } = JSON.parse(line) as { id: number };
      sock.write(
        `${JSON.stringify({ id, ok: false, error: { code: "ERR_CONTROL_BAD_ARGUMENT", message: "no such neighbour" } })}\n`,
      );
    });
    const c = await ControlClient.connect(path);
    const e = await c.call("get-link", { neighbor: 7 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ControlError);
    expect(e).toMatchObject({ code: "ERR_CONTROL_BAD_ARGUMENT", message: "no such neighbour" });
    c.close();
  });

  it("rejects a reply that is not JSON with ERR_CONTROL_BAD_REPLY", async () => {
    const path = await serve((_line, sock) => sock.write("not json\n"));
    const c = await ControlClient.connect(path);
    const e = await c.call("status").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ControlError);
    expect(e).toMatchObject({ code: "ERR_CONTROL_BAD_REPLY" });
    expect((e as Error).message).toMatch(/^bad reply: /);
    c.close();
  });

  it("rejects a pending request with ERR_CONTROL_CLOSED when the daemon hangs up", async () => {
    const path = await serve((_line, sock) => sock.end());
    const c = await ControlClient.connect(path);
    const e = await c.call("status").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ControlError);
    expect(e).toMatchObject({ code: "ERR_CONTROL_CLOSED" });
    c.close();
  });
});
