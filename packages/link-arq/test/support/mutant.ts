/**
 * Planted-bug checks: builds a copy of `packages/link-arq/src` with one source edit (a "mutant")
 * under `test/.mutants/<name>/` (git-ignored) and imports it, so a sweep can be run against code
 * with a known bug without touching the real sources. The edit must match exactly once, or the
 * build throws: a mutant that silently equals the original would prove nothing. `removeMutants`
 * deletes the copies (call it after the tests).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { LinkImpl } from "./sweeps.ts";

const here = dirname(fileURLToPath(import.meta.url));
const SRC = join(here, "..", "..", "src");
const OUT = join(here, "..", ".mutants");

export interface Mutation {
  /** The file in src/ to edit. */
  readonly file: string;
  /** The exact text to remove or replace (must occur exactly once). */
  readonly find: string;
  readonly replace: string;
}

/** Writes the mutant (every src file, `m` applied; none for a control copy) and imports its index. */
export async function buildMutant(name: string, m: Mutation | undefined): Promise<LinkImpl> {
  const dir = join(OUT, name);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(SRC)) {
    if (!f.endsWith(".ts")) continue;
    let text = readFileSync(join(SRC, f), "utf8");
    if (m !== undefined && f === m.file) {
      const n = text.split(m.find).length - 1;
      if (n !== 1) throw new Error(`mutant ${name}: ${JSON.stringify(m.find)} occurs ${n} times in src/${f}`);
      text = text.replace(m.find, m.replace);
    }
    writeFileSync(join(dir, f), text);
  }
  return (await import(/* @vite-ignore */ pathToFileURL(join(dir, "index.ts")).href)) as LinkImpl;
}

/** Deletes every mutant written by `buildMutant`. */
export function removeMutants(): void {
  rmSync(OUT, { recursive: true, force: true });
}

/**
 * The receiver's bitmap ring (one slot per sequence number modulo the window) is cleared in two
 * places of `ReliableReceiver.onData`: the slot of an in-order arrival, and the slots of the first
 * buffered range when the cumulative ack jumps over it. Without either, a slot reused one window
 * later still reads "received", and the new packet is taken for a duplicate forever.
 */
export const BITMAP_CLEAR_IN_ORDER: Mutation = {
  file: "reliable.ts",
  find: "      this.#bits[seq % W] = 0;\n",
  replace: "",
};
export const BITMAP_CLEAR_RANGE: Mutation = {
  file: "reliable.ts",
  find: "        for (let s = first[0]; s < first[1]; s++) this.#bits[s % W] = 0;\n",
  replace: "",
};
