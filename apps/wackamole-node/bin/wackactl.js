#!/usr/bin/env node
// Inside the workspace (tsx available) runs the TypeScript sources; an installed package runs the
// compiled dist/ (the workspace's own packages resolve to .ts sources, which plain Node cannot load).
import { existsSync } from "node:fs";

let register;
try {
  ({ register } = await import("tsx/esm/api"));
} catch {
  register = undefined;
}
if (register) {
  register();
  await import(new URL("../src/wackactl-main.ts", import.meta.url).href);
} else {
  const entry = new URL("../dist/wackactl-main.js", import.meta.url);
  if (!existsSync(entry)) {
    process.stderr.write("wackactl: dist/ is missing: run `pnpm build` (or install tsx)\n");
    process.exit(1);
  }
  await import(entry.href);
}
