/**
 * The membership key file (`auth.keyFile`): text lines `<keyId> <64 hex digits>`, the first line the
 * key members sign with, an optional second the next key (accepted, for rotation); `#` comments.
 * The file must not be readable by group or others. `--gen-key FILE` writes a fresh one.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { ConfigError } from "@spines-ts/primitives";

export interface KeyEntry {
  readonly keyId: number;
  readonly key: Uint8Array;
}

/** Parses key-file text; throws ConfigError naming `source:line`. */
export function parseKeyText(text: string, source: string): KeyEntry[] {
  const keys: KeyEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/#.*$/, "").trim();
    if (line === "") continue;
    const m = /^(\d{1,5})\s+([0-9a-fA-F]{64})$/.exec(line);
    if (m === null)
      throw new ConfigError(
        `${source}:${i + 1}`,
        "(key line)",
        '"<keyId> <64 hex digits>"',
        "a malformed line",
      );
    const keyId = Number(m[1]);
    if (keyId > 0xffff) throw new ConfigError(`${source}:${i + 1}`, "keyId", "an integer in 0..65535", keyId);
    if (keys.some((k) => k.keyId === keyId))
      throw new ConfigError(`${source}:${i + 1}`, "keyId", "a key id not used above", keyId);
    keys.push({ keyId, key: new Uint8Array(Buffer.from(m[2] as string, "hex")) });
  }
  if (keys.length === 0 || keys.length > 2)
    throw new ConfigError(source, "(keys)", "1 or 2 key lines (current, then next)", keys.length);
  return keys;
}

/** Reads and checks a key file: it exists, is a regular file, has no group/other permissions, parses. */
export function readKeyFile(path: string, key = "auth.keyFile"): KeyEntry[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    throw new ConfigError(
      path,
      key,
      "an existing key file (create one with --gen-key FILE)",
      (e as NodeJS.ErrnoException).code ?? String(e),
    );
  }
  if (!st.isFile()) throw new ConfigError(path, key, "a regular file", "not a file");
  if ((st.mode & 0o077) !== 0)
    throw new ConfigError(
      path,
      key,
      "a file only its owner can read (chmod 600)",
      `mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}`,
    );
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(path, key, "a readable file", (e as NodeJS.ErrnoException).code ?? String(e));
  }
  return parseKeyText(text, path);
}

/** Writes a new key file (mode 0600, never over an existing file) with one random 256-bit key. */
export function generateKeyFile(path: string, keyId = 1): void {
  const hex = randomBytes(32).toString("hex");
  writeFileSync(path, `${keyId} ${hex}\n`, { mode: 0o600, flag: "wx" });
}
