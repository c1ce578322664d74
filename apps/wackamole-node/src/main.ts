/**
 * `wackamole-node` entry point. Exit codes: 0 normal (including SIGTERM/SIGINT, --check passed,
 * --help, --version, --import-wackamole-conf, --gen-key), 1 cannot start, 2 bad usage or configuration.
 */
import { readFileSync } from "node:fs";
import { ConfigError, SpinesError } from "@spines-ts/primitives";
import { HELP, parseArgs, resolveConfig, VERSION } from "./config.ts";
import { STOP_HARD_MS, WackamoleDaemon } from "./daemon.ts";
import { generateKeyFile } from "./keyfile.ts";
import { createDaemonLogger } from "./logger.ts";
import { importWackamoleConf } from "./wackamole-conf.ts";

function usageError(e: Error): number {
  process.stderr.write(`wackamole-node: ${e.message}\nTry 'wackamole-node --help' for more information.\n`);
  return 2;
}

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
      process.stdout.write(`wackamole-node ${VERSION}\n`);
      return 0;
    }
    if (cli.importConf !== undefined) {
      let text: string;
      try {
        text = readFileSync(cli.importConf, "utf8");
      } catch (e) {
        throw new ConfigError(
          cli.importConf,
          "(file)",
          "a readable file",
          (e as NodeJS.ErrnoException).code ?? String(e),
        );
      }
      process.stdout.write(importWackamoleConf(text, cli.importConf));
      return 0;
    }
    if (cli.genKey !== undefined) {
      try {
        generateKeyFile(cli.genKey);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        process.stderr.write(
          `wackamole-node: cannot write ${cli.genKey}: ${code === "EEXIST" ? "it exists (refusing to overwrite a key)" : (e as Error).message}\n`,
        );
        return 1;
      }
      process.stdout.write(`wrote ${cli.genKey} (mode 0600); copy it to every member\n`);
      return 0;
    }
    config = resolveConfig(cli);
  } catch (e) {
    if (e instanceof ConfigError || (e instanceof SpinesError && e.code === "ERR_WACKAMOLE_CONF"))
      return usageError(e);
    throw e;
  }
  if (cli.check) {
    process.stdout.write(
      `${config.configFile ?? "configuration"}: ok (node ${config.id}, ${config.vips.groups.length} groups, ${config.peers.length} peers, driver ${config.driver})\n`,
    );
    return 0;
  }
  const logger = createDaemonLogger(config.logLevel);
  const log = logger.log;
  let daemon: WackamoleDaemon;
  try {
    daemon = await WackamoleDaemon.start({ config, log, setLogLevel: (l) => logger.setLevel(l) });
  } catch (e) {
    log.error({ err: String(e), code: (e as { code?: string }).code }, "wackamole-node failed to start");
    logger.flush();
    process.stderr.write(`wackamole-node: ${(e as Error).message}\n`);
    return e instanceof ConfigError ? 2 : 1;
  }
  const stop = (signal: string) => {
    log.info({ signal }, "signal received; releasing every VIP");
    // A second signal while stopping exits at once.
    process.once(signal as NodeJS.Signals, () => process.exit(1));
    const hard = setTimeout(() => {
      log.error("stop took too long; exiting");
      logger.flush();
      process.exit(1);
    }, STOP_HARD_MS);
    hard.unref();
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
  let reloading = Promise.resolve();
  process.on("SIGHUP", () => {
    reloading = reloading.then(async () => {
      if (config.configFile === undefined) {
        log.info("SIGHUP: no configuration file to reload");
        return;
      }
      try {
        const next = resolveConfig(cli);
        await daemon.reload(next);
      } catch (e) {
        // A bad file, or a refused change, keeps the running configuration.
        daemon.counters.reloadErrors++;
        log.error({ err: (e as Error).message }, "SIGHUP: configuration not reloaded");
      }
    });
  });
  return undefined;
}

const code = await main(process.argv.slice(2));
if (code !== undefined) process.exit(code);
