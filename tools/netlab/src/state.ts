/** The state file of a testbed (`/tmp/netlab-<prefix>/state.json`): what cleanup needs after a crash. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TopologySpec } from "./topology.ts";

export interface TestbedState {
  prefix: string;
  createdAt: string;
  spec: TopologySpec;
  emulator?: { pid: number; controlPort: number };
  socats: number[];
  /** Host/net pairs currently cut by linkDown. */
  down: string[];
  /** Current partition (groups of hosts), if any. */
  partition?: string[][];
}

export function stateDir(prefix: string): string {
  return join("/tmp", `netlab-${prefix}`);
}

export function readState(prefix: string): TestbedState | undefined {
  const f = join(stateDir(prefix), "state.json");
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, "utf8")) as TestbedState;
  } catch {
    return undefined;
  }
}

export function writeState(s: TestbedState): void {
  const dir = stateDir(s.prefix);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, "state.json.tmp");
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, join(dir, "state.json"));
}
