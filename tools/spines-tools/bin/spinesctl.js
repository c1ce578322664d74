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
let entry = new URL("../dist/spinesctl.js", import.meta.url);
if (register) {
  register();
  entry = new URL("../src/spinesctl.ts", import.meta.url);
} else if (!existsSync(entry)) {
  process.stderr.write("spinesctl: dist/ is missing: run `pnpm build` (or install tsx)\n");
  process.exit(1);
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
// Exit once stdout is flushed, even if a handle is still open.
process.stdout.write("", () => process.exit(code));
