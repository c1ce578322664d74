/**
 * Authenticated membership on real daemons: members sharing a key file form one view; a member with
 * another key is kept out (its frames are dropped and counted); a member that fails and comes back
 * (a new incarnation with a new frame counter start) is accepted again.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateKeyFile } from "../src/keyfile.ts";
import {
  coveredOnce,
  freeTcpPort,
  type Spawned,
  scratchCluster,
  spawnDaemon,
  waitUntil,
  writeCluster,
} from "./helpers.ts";

const NAMES = ["g1", "g2", "g3", "g4"];
const { dir, daemons } = scratchCluster();

describe("auth.keyFile", () => {
  it("members with the shared key form a view; a member with another key stays out", async () => {
    const good = join(dir, "cluster.key");
    const other = join(dir, "other.key");
    generateKeyFile(good);
    generateKeyFile(other);
    const metricsPort = await freeTcpPort();
    const nodes = await writeCluster(
      dir,
      3,
      (id) => ({
        auth: { keyFile: id === 3 ? other : good },
        ...(id === 1 ? { metrics: { listen: `127.0.0.1:${metricsPort}` } } : {}),
      }),
      4,
    );
    for (const n of nodes) daemons.push(await spawnDaemon(n));
    const [d1, d2, d3] = daemons as [Spawned, Spawned, Spawned];
    const ss = await waitUntil(
      () => Promise.all([d1.status(), d2.status()]),
      (ss) =>
        ss.every((s) => s.view?.members.join() === "1,2" && s.phase === "run") && coveredOnce(ss, NAMES),
      "nodes 1 and 2 in one view covering every group",
    );
    expect(ss.every((s) => s.auth)).toBe(true);
    // node 3 forms a view of its own (its component: it covers every group there)
    await waitUntil(
      () => d3.status(),
      (s) => s.view?.members.join() === "3" && s.held.length === 4,
      "node 3 alone in its own view",
    );
    await waitUntil(
      () => d1.status(),
      (s) => (s.counters.authDropped ?? 0) > 0,
      "node 1 counting node 3's frames as dropped",
    );
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(body).toMatch(/^wackamole_auth_accepted_total [1-9]\d*$/m);
    expect(body).toMatch(/^wackamole_auth_dropped_total\{reason="(unknown-key|bad-mac)"\} [1-9]\d*$/m);
  });

  it("a member that fails and comes back (new incarnation) is accepted again", async () => {
    const [d1, d2] = daemons as [Spawned, Spawned];
    await d1.call("fail");
    await waitUntil(
      () => d2.status(),
      (s) => s.view?.members.join() === "2" && s.held.length === 4,
      "node 2 alone with every group",
    );
    await d1.call("succeed");
    await waitUntil(
      () => Promise.all([d1.status(), d2.status()]),
      (ss) => ss.every((s) => s.view?.members.join() === "1,2") && coveredOnce(ss, NAMES),
      "nodes 1 and 2 together again",
    );
  });

  it("a key rotation by SIGHUP (old+new, new+old, new) keeps the members together without a rebuild", async () => {
    const [d1, d2] = daemons as [Spawned, Spawned];
    const file = join(dir, "cluster.key");
    const old = readFileSync(file, "utf8")
      .split("\n")
      .find((l) => /^\d+ /.test(l)) as string;
    const fresh = `2 ${randomBytes(32).toString("hex")}`;
    const oldId = Number(old.split(" ")[0]);
    expect((await d1.status()).authKeys).toEqual([oldId]);
    for (const lines of [[old, fresh], [fresh, old], [fresh]]) {
      writeFileSync(file, `${lines.join("\n")}\n`);
      const before = await Promise.all([d1.status(), d2.status()]);
      d1.proc.kill("SIGHUP");
      d2.proc.kill("SIGHUP");
      await waitUntil(
        () => Promise.all([d1.status(), d2.status()]),
        (ss) => ss.every((s, i) => s.counters.reloads === (before[i]?.counters.reloads ?? 0) + 1),
        "both reloaded",
      );
    }
    const ss = await waitUntil(
      () => Promise.all([d1.status(), d2.status()]),
      (ss) => ss.every((s) => s.view?.members.join() === "1,2") && coveredOnce(ss, NAMES),
      "nodes 1 and 2 together under the new key",
    );
    expect(ss.map((s) => s.counters.rebuilds)).toEqual([0, 0]);
    expect(ss.map((s) => s.authKeys)).toEqual([[2], [2]]);
    expect(
      d1.logs
        .filter((l) => l.msg === "configuration reloaded")
        .every((l) => (l.applied as string[]).includes("auth")),
    ).toBe(true);
  });
});
