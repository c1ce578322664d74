/**
 * The membership key file (`auth.keyFile`), in the format of `@spines-ts/wire/auth`: text lines
 * `<keyId> <64 hex digits>`, the first the key members sign with, an optional second the next key
 * (accepted too, for rotation); `#` comments. The file must not be readable by group or others.
 * `--gen-key FILE` writes a fresh one with the same package's generator.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { ConfigError } from "@spines-ts/primitives";
import {
  generateKeyFile as generateKeyText,
  KeyFileError,
  type KeySet,
  parseKeyFile,
} from "@spines-ts/wire/auth";

/** Parses key-file text; throws ConfigError naming `source:line` (never echoing key material). */
export function parseKeyText(text: string, source: string): KeySet {
  try {
    return parseKeyFile(text);
  } catch (e) {
    if (!(e instanceof KeyFileError)) throw e;
    const why = e.line === undefined ? e.message : e.message.replace(/^key file line \d+: /, "");
    throw new ConfigError(
      e.line === undefined ? source : `${source}:${e.line}`,
      "(key file)",
      '1 or 2 lines "<keyId> <64 hex digits>"',
      why,
    );
  }
}

/** Reads and checks a key file: it exists, is a regular file, has no group/other permissions, parses. */
export function readKeyFile(path: string, key = "auth.keyFile"): KeySet {
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

/** A fingerprint-free identity of a key set, to tell whether a reload changed the keys. */
export function sameKeys(a: KeySet | undefined, b: KeySet | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.keys.length !== b.keys.length) return false;
  return a.keys.every((k, i) => {
    const o = b.keys[i];
    return o !== undefined && o.id === k.id && Buffer.from(o.key).equals(Buffer.from(k.key));
  });
}

/** Writes a new key file (mode 0600, never over an existing file) with one random 256-bit key. */
export function generateKeyFile(path: string, keyId = 1): void {
  writeFileSync(path, generateKeyText(keyId), { mode: 0o600, flag: "wx" });
}
