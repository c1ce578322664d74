/**
 * The key options of spines-node: `--key-file`, config `auth.keyFile` (relative to the config file),
 * typed errors for bad files; and key rotation by SIGHUP reload on real daemons (loopback UDP): the
 * link stays up through current -> current+next -> next+current -> next, with no drop counted.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, silentLogger } from "@spines-ts/primitives";
import { formatKeyFile, generateKeyFile, KeySet, parseKeyFile } from "@spines-ts/wire/auth";
import { afterAll, describe, expect, it } from "vitest";
import { parseArgs, resolveConfig } from "../src/config.ts";
import { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, tmp, waitFor } from "./helpers.ts";

const started: SpinesDaemon[] = [];
afterAll(async () => {
  for (const d of started) await d.stop();
});

function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("no ConfigError");
}

describe("key options", () => {
  it("--key-file and auth.keyFile resolve to a checked file; the flag wins", () => {
    const dir = tmp();
    writeFileSync(join(dir, "a.key"), generateKeyFile(3));
    writeFileSync(join(dir, "b.key"), generateKeyFile(4));
    writeFileSync(join(dir, "node.yaml"), "id: 1\nlisten: 127.0.0.1:9\nauth:\n  keyFile: a.key\n");
    const env = { tmpdir: dir };
    expect(resolveConfig(parseArgs(["-c", join(dir, "node.yaml")]), env).keyFile).toBe(join(dir, "a.key"));
    expect(
      resolveConfig(parseArgs(["-c", join(dir, "node.yaml"), "--key-file", join(dir, "b.key")]), env).keyFile,
    ).toBe(join(dir, "b.key"));
    expect(resolveConfig(parseArgs(["--listen", "127.0.0.1:9"]), env).keyFile).toBeUndefined();
    expect(parseArgs(["--gen-key", "/x"]).genKey).toBe("/x");
  });

  it("refuses a missing file, a bad line (with its number, without the key) and unknown auth keys", () => {
    const dir = tmp();
    const env = { tmpdir: dir };
    const missing = configError(() => resolveConfig(parseArgs(["--key-file", join(dir, "none")]), env));
    expect(missing.message).toContain("ENOENT");
    writeFileSync(join(dir, "bad.key"), `1 ${"cd".repeat(32)}\n2 ${"cd".repeat(32)}\n3 ${"cd".repeat(32)}\n`);
    const three = configError(() => resolveConfig(parseArgs(["--key-file", join(dir, "bad.key")]), env));
    expect(three.source).toBe(`${join(dir, "bad.key")}:3`);
    expect(three.message).not.toContain("cd".repeat(32));
    writeFileSync(join(dir, "n.yaml"), "auth:\n  keyfile: x\n");
    expect(configError(() => resolveConfig(parseArgs(["-c", join(dir, "n.yaml")]), env)).key).toBe(
      "auth.keyfile",
    );
    writeFileSync(join(dir, "m.yaml"), "auth: x.key\n");
    expect(configError(() => resolveConfig(parseArgs(["-c", join(dir, "m.yaml")]), env)).key).toBe("auth");
  });
});

describe("encrypt mode (real daemons)", () => {
  it("auth.encrypt: two daemons bring their link up; one without encrypt is refused", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "k"), generateKeyFile());
    writeFileSync(join(dir, "e.yaml"), "listen: 127.0.0.1:9\nauth: { keyFile: k, encrypt: true }\n");
    const cfg = resolveConfig(parseArgs(["-c", join(dir, "e.yaml")]), { tmpdir: dir });
    expect(cfg.encrypt).toBe(true);
    writeFileSync(join(dir, "bad.yaml"), "auth: { keyFile: k, encrypt: yes please }\n");
    expect(
      configError(() => resolveConfig(parseArgs(["-c", join(dir, "bad.yaml")]), { tmpdir: dir })).key,
    ).toBe("auth.encrypt");
    const [pa, pb, pc] = (await freeUdpPorts(3)) as [number, number, number];
    const key = join(dir, "k");
    const start = async (id: number, port: number, peers: [number, number][], encrypt: boolean) => {
      const d = await SpinesDaemon.start({
        config: { ...inProcessConfig(dir, id, port, peers), keyFile: key, encrypt },
        log: silentLogger,
      });
      started.push(d);
      return d;
    };
    const a = await start(
      1,
      pa,
      [
        [2, pb],
        [3, pc],
      ],
      true,
    );
    const b = await start(2, pb, [[1, pa]], true);
    const c = await start(3, pc, [[1, pa]], false);
    expect(a.status().auth).toMatchObject({ enabled: true, mode: "encrypt" });
    const up = (d: SpinesDaemon, peer: number) => d.neighbors().find((n) => n.id === peer)?.state === "up";
    await waitFor(() => up(a, 2) && up(b, 1), "encrypted link up", 15_000);
    await waitFor(() => (a.node.authStats()?.badMac ?? 0) > 3, "the mac-mode node refused", 15_000);
    expect(up(a, 3)).toBe(false);
    expect(c.node.authStats()?.accepted).toBe(0);
  });
});

describe("key rotation by reload (real daemons)", () => {
  it("keys roll node by node without the link going down or a frame refused", async () => {
    const dir = tmp();
    const [pa, pb] = (await freeUdpPorts(2)) as [number, number];
    const k1 = parseKeyFile(generateKeyFile(1)).current;
    const k2 = parseKeyFile(generateKeyFile(2)).current;
    const fa = join(dir, "a.key");
    const fb = join(dir, "b.key");
    const write = (f: string, keys: (typeof k1)[]) => writeFileSync(f, formatKeyFile(new KeySet(keys)));
    write(fa, [k1]);
    write(fb, [k1]);
    const a = await SpinesDaemon.start({
      config: { ...inProcessConfig(dir, 1, pa, [[2, pb]]), keyFile: fa },
      log: silentLogger,
    });
    started.push(a);
    const b = await SpinesDaemon.start({
      config: { ...inProcessConfig(dir, 2, pb, [[1, pa]]), keyFile: fb },
      log: silentLogger,
    });
    started.push(b);
    const up = () => a.neighbors()[0]?.state === "up" && b.neighbors()[0]?.state === "up";
    await waitFor(up, "link up", 15_000);
    const refused = () =>
      [a, b].reduce((n, d) => {
        const s = d.node.authStats();
        return n + (s ? s.unknownKey + s.badMac + s.unsigned : 0);
      }, 0);
    const steps: [string, (typeof k1)[]][] = [
      [fa, [k1, k2]],
      [fb, [k1, k2]],
      [fa, [k2, k1]],
      [fb, [k2, k1]],
      [fa, [k2]],
      [fb, [k2]],
    ];
    for (const [file, keys] of steps) {
      write(file, keys);
      const d = file === fa ? a : b;
      expect(d.reload({ ...d.config }).applied).toContain("auth.keyFile");
      expect(d.node.auth?.keys.ids()).toEqual(keys.map((k) => k.id));
      const before = d.node.authStats()?.accepted ?? 0;
      await waitFor(() => (d.node.authStats()?.accepted ?? 0) > before + 3, "frames accepted after the step");
      expect(up()).toBe(true);
      expect(refused()).toBe(0);
    }
    // and a node left on the retired key alone is now refused
    write(fb, [k1]);
    b.reload({ ...b.config });
    await waitFor(() => (a.node.authStats()?.unknownKey ?? 0) > 0, "the retired key refused");
  });
});
