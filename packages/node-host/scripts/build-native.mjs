#!/usr/bin/env node
/**
 * Builds the optional batched-UDP addon (native/udp_batch.c -> native/build/udp_batch.node) with
 * the system C compiler and the Node-API + libuv headers of the running Node. Run at install; it
 * never fails the install: without a compiler or headers (or off Linux) it says so in one line and
 * the host uses node:dgram instead (`UdpHost.io` tells which one runs).
 *
 * Environment: CC (default cc), SPINES_NODE_INCLUDE (a directory with node_api.h and uv.h),
 * SPINES_NATIVE=0 (skip the build), SPINES_NATIVE_REQUIRED=1 (fail when the build fails: CI).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "native", "udp_batch.c");
const out = join(root, "native", "build", "udp_batch.node");
const required = process.env.SPINES_NATIVE_REQUIRED === "1";

function skip(why) {
  const msg = `@spines-ts/node-host: batched UDP addon not built (${why}); using node:dgram`;
  if (required) {
    console.error(msg);
    process.exit(1);
  }
  console.log(msg);
  process.exit(0);
}

if (process.env.SPINES_NATIVE === "0") skip("SPINES_NATIVE=0");
if (process.platform !== "linux") skip("Linux only");
if (!existsSync(src)) skip("no source");

const version = process.versions.node;
const candidates = [
  process.env.SPINES_NODE_INCLUDE,
  join(dirname(process.execPath), "..", "include", "node"),
  "/usr/include/node",
  "/usr/local/include/node",
  join(homedir(), ".cache", "node-gyp", version, "include", "node"),
].filter((d) => d !== undefined && d !== "");
const include = candidates.find((d) => existsSync(join(d, "node_api.h")) && existsSync(join(d, "uv.h")));
if (include === undefined) skip(`no node_api.h + uv.h in ${candidates.join(", ")}`);

const cc = process.env.CC || "cc";
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = [
  "-O2",
  "-fPIC",
  "-shared",
  "-Wall",
  "-DNODE_GYP_MODULE_NAME=udp_batch",
  `-I${include}`,
  "-o",
  tmp,
  src,
];
const r = spawnSync(cc, args, { stdio: ["ignore", "inherit", "inherit"] });
if (r.error !== undefined) skip(`${cc}: ${r.error.message}`);
if (r.status !== 0) skip(`${cc} exited with ${r.status}`);
renameSync(tmp, out);
console.log(`@spines-ts/node-host: built ${out}`);
