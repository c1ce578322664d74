import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * The namespace acceptance test of issue 15 (root). Not part of `pnpm test` yet: it does not pass
 * on this 2-core machine (the four daemons' views do not converge while other tests load the CPU,
 * and a kill left clients' neighbour caches at the loser's MAC; see README.md). Run it alone:
 * `pnpm --filter @spines-ts/wackamole-node acceptance`.
 */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["acceptance/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
