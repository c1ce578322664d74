/**
 * SIGHUP on a real daemon (dry-run driver): a new VIP table and log level are applied; an invalid
 * file, or a changed id or bind address, is refused with a logged error and the running
 * configuration stays.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import {
  type ClusterNode,
  groups,
  type Spawned,
  scratchCluster,
  spawnDaemon,
  waitUntil,
  writeCluster,
} from "./helpers.ts";

const { dir, daemons } = scratchCluster();

function edit(node: ClusterNode, fn: (doc: Record<string, unknown>) => void): void {
  const doc = parse(readFileSync(node.config, "utf8")) as Record<string, unknown>;
  fn(doc);
  writeFileSync(node.config, stringify(doc));
}

describe("SIGHUP reload", () => {
  let node: ClusterNode;
  let d: Spawned;

  it("starts with 3 groups", async () => {
    [node] = (await writeCluster(dir, 1, () => ({}), 3)) as [ClusterNode];
    d = await spawnDaemon(node);
    daemons.push(d);
    await waitUntil(
      () => d.status(),
      (s) => s.held.length === 3,
      "3 groups held",
    );
  });

  it("applies a new VIP table and log level", async () => {
    edit(node, (doc) => {
      (doc.vips as Record<string, unknown>).groups = groups(5);
      doc.log = { level: "debug" };
    });
    d.proc.kill("SIGHUP");
    const s = await waitUntil(
      () => d.status(),
      (s) => Object.keys(s.owners).length === 5 && s.held.length === 5,
      "5 groups held after the reload",
    );
    expect(s.counters.reloads).toBe(1);
    const line = d.logs.find((l) => l.msg === "configuration reloaded");
    expect(line?.applied).toEqual(expect.arrayContaining(["log.level", "vips/membership"]));
    // debug lines now appear (the allocation is logged at debug)
    await waitUntil(
      () => d.logs.some((l) => l.level === 20),
      (v) => v,
      "a debug line",
    );
  });

  it("keeps running on an invalid file", async () => {
    edit(node, (doc) => {
      doc.colour = "blue";
    });
    d.proc.kill("SIGHUP");
    const err = await waitUntil(
      () => d.logs.find((l) => l.msg === "SIGHUP: configuration not reloaded"),
      (l) => l !== undefined,
      "the reload error",
    );
    expect(String(err?.err)).toMatch(/colour: expected one of/);
    const s = await d.status();
    expect(s.held.length).toBe(5);
    expect(s.counters.reloadErrors).toBe(1);
  });

  it("refuses an id or bind change with a logged error", async () => {
    let peers: unknown;
    edit(node, (doc) => {
      delete doc.colour;
      doc.id = 9;
      peers = doc.peers;
      doc.peers = [];
    });
    d.proc.kill("SIGHUP");
    await waitUntil(
      () => d.logs.filter((l) => l.msg === "SIGHUP: configuration not reloaded").map((l) => String(l.err)),
      (errs) => errs.some((e) => /id: expected the running id 1/.test(e)),
      "the id change refused",
    );
    edit(node, (doc) => {
      doc.id = 1;
      doc.peers = peers;
      (doc.bind as Record<string, unknown>).port = node.port + 1;
    });
    d.proc.kill("SIGHUP");
    await waitUntil(
      () => d.logs.filter((l) => l.msg === "SIGHUP: configuration not reloaded").map((l) => String(l.err)),
      (errs) => errs.some((e) => /bind: expected the running 127\.0\.0\.1:\d+/.test(e)),
      "the bind change refused",
    );
    const s = await d.status();
    expect(s.id).toBe(1);
    expect(s.held.length).toBe(5);
    expect(d.proc.exitCode).toBe(null);
  });
});
