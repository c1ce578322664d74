/**
 * The `netlab` command line: build, use, fault and remove testbeds from a topology file.
 * Run `netlab --help` for usage.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { NetlabError } from "./errors.ts";
import { readState, stateDir } from "./state.ts";
import { nsName, requireRoot, Testbed } from "./testbed.ts";
import type { TopologySpec } from "./topology.ts";

const HELP = `netlab: network-namespace testbeds (needs root)

usage:
  netlab up <topology.json|yaml> [--prefix P] [--replace]
                                   build the testbed and leave it running
  netlab down [--prefix P]         remove everything with the prefix (also after a crash)
  netlab status [--prefix P]       hosts, addresses and emulated-link counters
  netlab exec [--prefix P] <host> -- cmd [args...]
                                   run a command inside a host's namespace
  netlab fault [--prefix P] link-down <host> <net>
  netlab fault [--prefix P] link-up <host> <net>
  netlab fault [--prefix P] partition <h1,h2> <h3,h4> ...
  netlab fault [--prefix P] heal
  netlab fault [--prefix P] set-link <link> [--delay MS] [--jitter MS] [--loss PCT] [--rate MBIT] [--dir ab|ba|both]
  netlab fault pause|resume|kill <pid>
  netlab --help

The prefix defaults to the topology's "prefix" (up) or "nl". A topology file looks like:
  { "prefix": "demo", "hosts": ["a", "b", "c"],
    "links": [ { "a": "a", "b": "b", "delayMs": 10, "lossPct": 1 }, { "a": "b", "b": "c", "delayMs": 10 } ] }
See docs/netlab.md for every field.`;

function takeFlag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) throw new NetlabError("ERR_USAGE", `${name} needs a value`);
  args.splice(i, 2);
  return v;
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new NetlabError("ERR_USAGE", `${name} must be a number, got ${v}`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  if (args.length === 0 || args.includes("--help") || args.includes("-h")) {
    console.log(HELP);
    return args.length === 0 ? 1 : 0;
  }
  const cmd = args.shift();
  const dashdash = args.indexOf("--");
  const tail = dashdash === -1 ? [] : args.splice(dashdash).slice(1);
  const prefixFlag = takeFlag(args, "--prefix");
  const prefix = prefixFlag ?? "nl";
  switch (cmd) {
    case "up": {
      const replace = args.includes("--replace");
      const file = args.find((a) => !a.startsWith("--"));
      if (file === undefined) throw new NetlabError("ERR_USAGE", "netlab up needs a topology file");
      const text = readFileSync(file, "utf8");
      let spec: TopologySpec;
      try {
        spec = (/\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text)) as TopologySpec;
      } catch (e) {
        throw new NetlabError("ERR_TOPOLOGY", `cannot parse ${file}: ${String(e)}`);
      }
      if (prefixFlag !== undefined) spec.prefix = prefixFlag;
      if (replace) spec.replace = true;
      const tb = await Testbed.create(spec);
      console.log(`testbed "${tb.prefix}" is up (state in ${stateDir(tb.prefix)})`);
      for (const h of tb.hosts) console.log(`  ${h.padEnd(12)} netns ${nsName(tb.prefix, h)}`);
      console.log(`remove it with: netlab down --prefix ${tb.prefix}`);
      return 0;
    }
    case "down": {
      requireRoot();
      await Testbed.cleanup(prefix);
      console.log(`removed everything with prefix "${prefix}"`);
      return 0;
    }
    case "status": {
      const tb = Testbed.attach(prefix);
      const s = readState(prefix);
      for (const h of tb.hosts) {
        const addrs = tb.nets.flatMap((n) => {
          try {
            return [`${n}=${tb.hostAddress(h, n)}`];
          } catch {
            return [];
          }
        });
        console.log(`${h.padEnd(12)} ${addrs.join("  ")}`);
      }
      if (s?.partition) console.log(`partition: ${s.partition.map((g) => g.join(",")).join(" | ")}`);
      if ((s?.down ?? []).length > 0) console.log(`down: ${s?.down.join(" ")}`);
      const st = await tb.linkStats();
      if (Object.keys(st).length > 0) console.log(JSON.stringify(st, null, 2));
      return 0;
    }
    case "exec": {
      const host = args[0];
      if (host === undefined || tail.length === 0)
        throw new NetlabError("ERR_USAGE", "netlab exec <host> -- cmd [args...]");
      const tb = Testbed.attach(prefix);
      const child = tb.spawn(host, tail, { stdio: "inherit" });
      return await new Promise<number>((resolve) => {
        child.on("error", () => resolve(127));
        child.on("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
      });
    }
    case "fault": {
      const what = args.shift();
      if (what === "pause" || what === "resume" || what === "kill") {
        requireRoot();
        const pid = num(args[0], "pid");
        if (pid === undefined) throw new NetlabError("ERR_USAGE", `netlab fault ${what} <pid>`);
        process.kill(pid, what === "pause" ? "SIGSTOP" : what === "resume" ? "SIGCONT" : "SIGKILL");
        return 0;
      }
      const tb = Testbed.attach(prefix);
      if (what === "link-down" || what === "link-up") {
        const [host, net] = args;
        if (host === undefined || net === undefined)
          throw new NetlabError("ERR_USAGE", `netlab fault ${what} <host> <net>`);
        await (what === "link-down" ? tb.linkDown(host, net) : tb.linkUp(host, net));
      } else if (what === "partition") {
        if (args.length < 1) throw new NetlabError("ERR_USAGE", "netlab fault partition <h1,h2> <h3> ...");
        await tb.partition(args.map((g) => g.split(",").filter((x) => x.length > 0)));
      } else if (what === "heal") await tb.heal();
      else if (what === "set-link") {
        const dir = takeFlag(args, "--dir") ?? "both";
        if (dir !== "ab" && dir !== "ba" && dir !== "both")
          throw new NetlabError("ERR_USAGE", "--dir must be ab, ba or both");
        const params = {
          delayMs: num(takeFlag(args, "--delay"), "--delay"),
          jitterMs: num(takeFlag(args, "--jitter"), "--jitter"),
          lossPct: num(takeFlag(args, "--loss"), "--loss"),
          rateMbit: num(takeFlag(args, "--rate"), "--rate"),
        };
        const link = args[0];
        if (link === undefined)
          throw new NetlabError("ERR_USAGE", "netlab fault set-link <link> [--delay MS] ...");
        const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
        await tb.setLink(link, clean, dir);
      } else throw new NetlabError("ERR_USAGE", `unknown fault "${what ?? ""}"; see netlab --help`);
      return 0;
    }
    default:
      throw new NetlabError("ERR_USAGE", `unknown command "${cmd ?? ""}"; see netlab --help`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof NetlabError ? `netlab: ${e.message}` : e);
    process.exit(e instanceof NetlabError && e.code === "ERR_USAGE" ? 2 : 1);
  },
);
