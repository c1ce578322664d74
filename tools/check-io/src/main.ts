/**
 * `tsx tools/check-io/src/main.ts [root]`: fails (exit 1) when a sans-IO source file — anything
 * under `packages/<pkg>/src` that is not a named shell (src/shells.ts) — imports `node:*` (or a bare
 * Node built-in), reads a clock (`Date.now`, `new Date()`, `performance.now`), arms a real timer
 * (`setTimeout`, `setInterval`, `setImmediate`) or uses `Math.random`. Part of `pnpm lint`.
 */
import { resolve } from "node:path";
import { checkRepo } from "./check.ts";

const root = resolve(process.argv[2] ?? ".");
const found = checkRepo(root);
for (const v of found)
  console.error(`${v.file}:${v.line}:${v.column}  ${v.rule}  ${v.text} outside an I/O shell`);
if (found.length > 0) {
  console.error(
    `check-io: ${found.length} I/O use(s) in sans-IO code. Pass time, timers and randomness in through the Host ` +
      "(docs/drivers.md), or, for a real shell, name the file in tools/check-io/src/shells.ts.",
  );
  process.exit(1);
}
console.log("check-io: no I/O outside the named shells");
