/**
 * `spines-node` command-line entry point. Exit codes: 0 normal (including SIGTERM/SIGINT), 1 startup
 * failure (bad socket, address in use), 2 bad usage or configuration.
 */
import { writeFileSync } from "node:fs";
import { createDaemonLogger } from "@spines-ts/daemon-kit";
import { ConfigError } from "@spines-ts/primitives";
import { generateKeyFile } from "@spines-ts/wire/auth";
import { HELP, parseArgs, resolveConfig, VERSION } from "./config.ts";
import { SpinesDaemon } from "./daemon.ts";

export async function main(argv: readonly string[]): Promise<number | undefined> {
  let cli: ReturnType<typeof parseArgs>;
  let config: ReturnType<typeof resolveConfig>;
  try {
    cli = parseArgs(argv);
    if (cli.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (cli.version) {
      process.stdout.write(`spines-node ${VERSION}\n`);
      return 0;
    }
    if (cli.genKey !== undefined) return genKey(cli.genKey);
    config = resolveConfig(cli);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`spines-node: ${e.message}\nTry 'spines-node --help' for more information.\n`);
      return 2;
    }
    throw e;
  }
  const logger = createDaemonLogger(config.logLevel);
  const log = logger.log;
  let daemon: SpinesDaemon;
  try {
    daemon = await SpinesDaemon.start({ config, log, setLogLevel: (l) => logger.setLevel(l) });
  } catch (e) {
    log.error({ err: String(e), code: (e as { code?: string }).code }, "spines-node failed to start");
    process.stderr.write(`spines-node: ${(e as Error).message}\n`);
    logger.flush();
    return 1;
  }
  const stop = (signal: string) => {
    log.info({ signal }, "signal received; shutting down");
    // A second signal while stopping exits at once.
    process.once(signal as NodeJS.Signals, () => process.exit(1));
    daemon.stop().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (e) => {
        log.error({ err: String(e) }, "error while stopping");
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    if (config.configFile === undefined) {
      log.info("SIGHUP: no configuration file to reload");
      return;
    }
    try {
      const next = resolveConfig(cli);
      daemon.reload(next);
    } catch (e) {
      // A bad file on reload keeps the running configuration.
      log.error({ err: (e as Error).message }, "SIGHUP: configuration not reloaded");
    }
  });
  return undefined;
}

/** `--gen-key FILE`: a new key file, created mode 0600; an existing file is never overwritten. */
function genKey(file: string): number {
  try {
    writeFileSync(file, generateKeyFile(), { mode: 0o600, flag: "wx" });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EEXIST" ? "it exists (remove it first, or keep it)" : (e as Error).message;
    process.stderr.write(`spines-node: cannot write the key file ${file}: ${why}\n`);
    return code === "EEXIST" ? 2 : 1;
  }
  process.stdout.write(
    `spines-node: wrote a new key (id 1) to ${file}, mode 0600; copy it to every node of the overlay and start them with --key-file ${file}\n`,
  );
  return 0;
}

const code = await main(process.argv.slice(2));
if (code !== undefined) process.exit(code);
