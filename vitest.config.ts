import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

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
          include: ["test/**/*.test.ts"],
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
