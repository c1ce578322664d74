import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

/**
 * `SPINES_TEST_PHASE` (set by `pnpm test`, tools/test-runner): `all` runs every test but the solo
 * ones, `solo` only the solo ones (`*.solo.test.ts`: namespace clusters that must not share the
 * machine with the rest of the suite); unset, a plain `vitest` runs everything.
 */
const phase = process.env.SPINES_TEST_PHASE;
const SOLO = "test/**/*.solo.test.ts";

/** One vitest project per workspace package that has a test/ folder, named after its folder. */
function projects() {
  const out = [];
  for (const group of ["packages", "apps", "tools"]) {
    if (!existsSync(group)) continue;
    for (const name of readdirSync(group).sort()) {
      const root = join(group, name);
      if (!existsSync(join(root, "test"))) continue;
      out.push({
        test: {
          name,
          root,
          include: phase === "solo" ? [SOLO] : ["test/**/*.test.ts"],
          ...(phase === "all" ? { exclude: [SOLO, "**/node_modules/**"] } : {}),
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      });
    }
  }
  return out;
}

export default defineConfig({
  test: {
    projects: projects(),
  },
});
