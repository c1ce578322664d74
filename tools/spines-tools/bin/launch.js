// The one launcher behind every spines-tools bin. Inside the workspace (tsx available) it runs the
// TypeScript sources; an installed package runs the compiled dist/ (the workspace's own packages
// resolve to .ts sources, which plain Node cannot load).
import { existsSync } from "node:fs";

/** Runs tool `name`'s `main(argv)` and exits with its code once stdout is flushed. */
export async function launch(name) {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    register = undefined;
  }
  let entry = new URL(`../dist/${name}.js`, import.meta.url);
  if (register) {
    register();
    entry = new URL(`../src/${name}.ts`, import.meta.url);
  } else if (!existsSync(entry)) {
    process.stderr.write(`${name}: dist/ is missing: run \`pnpm build\` (or install tsx)\n`);
    process.exit(1);
  }
  const { main } = await import(entry.href);
  const code = await main(process.argv.slice(2));
  // Exit once stdout is flushed, even if a handle is still open.
  process.stdout.write("", () => process.exit(code));
}
