#!/usr/bin/env node
// Inside the workspace (tsx available) runs the TypeScript sources; an installed package runs the
// compiled dist/ (the workspace's own packages resolve to .ts sources, which plain Node cannot load).
let register;
try {
  ({ register } = await import("tsx/esm/api"));
} catch {
  register = undefined;
}
if (register) {
  register();
  await import(new URL("../src/main.ts", import.meta.url).href);
} else {
  await import(new URL("../dist/main.js", import.meta.url).href);
}
