#!/usr/bin/env node
import { createRequire } from "node:module";
import type v8 from "node:v8";
import { v8FlagsFor } from "./v8-flags.js";
import { runCli } from "./program.js";

// A batch's V8 settings (v8-flags.ts), for the commands that run one. (The bundle's
// entry, scripts/cli-entry.cjs, sets the same before this module is even compiled.)
// node:v8 is required only then: a short-lived command does not load it.
const v8Flags = v8FlagsFor(process.argv.slice(2));
if (v8Flags.length > 0) {
  const { setFlagsFromString } = createRequire(import.meta.url)("node:v8") as typeof v8;
  for (const flag of v8Flags) setFlagsFromString(flag);
}

// The only place that ends the process with a code (DESIGN §5): everything else returns it.
// Not a top-level await: the bundle is CommonJS (scripts/bundle-cli.js).
let finished = false;
void runCli(process.argv.slice(2)).then((code) => {
  finished = true;
  process.exitCode = code;
});
// Node exits when nothing is left to wait for: if the command has not finished by then, it
// was waiting on something that can never come (a bug). Exit 1, as an unsettled top-level
// await made Node exit 13, rather than 0 with half the output.
process.once("beforeExit", () => {
  if (finished) return;
  process.stderr.write("error: runflow stopped before the command finished (an internal error)\n");
  process.stderr.write("  hint: run again with --verbose, and report it if it persists\n");
  process.exitCode = 1;
});
