#!/usr/bin/env node
// Runs the TypeScript CLI through tsx in a source checkout, or the built dist/ when tsx is absent
// (published package).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "..", "src", "cli.ts");
let tsx;
try {
  tsx = await import("tsx/esm/api");
} catch {
  tsx = undefined;
}
if (tsx !== undefined && existsSync(src)) {
  tsx.register();
  await import(pathToFileURL(src).href);
} else {
  await import(pathToFileURL(join(here, "..", "dist", "cli.js")).href);
}
