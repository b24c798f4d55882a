#!/usr/bin/env node
import v8 from "node:v8";
import { runCli } from "./program.js";

// A batch of 100,000 steps runs for hours and allocates steadily (every poll is a request)
// while what stays live is small: V8's default lets the heap grow to about four times the
// live size before a full collection, which put a 100,000-step apply near 780 MB. Growing
// by 10% (and 8 MB semi-spaces) keeps it near 300 MB for about 10% more CPU than V8's
// default (docs/decisions.md, "Engine performance"). Set before anything is allocated. (The
// bundle's entry, scripts/cli-entry.cjs, sets them before this module is even compiled.)
v8.setFlagsFromString("--heap-growing-percent=10");
v8.setFlagsFromString("--max-semi-space-size=8");

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
