import { wackactl } from "./wackactl.ts";

process.exitCode = await wackactl(process.argv.slice(2));
