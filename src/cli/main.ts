#!/usr/bin/env node
import v8 from "node:v8";
import { runCli } from "./program.js";

// A batch of 100,000 steps runs for hours and allocates steadily (every poll is a request)
// while what stays live is small: V8's default lets the heap grow to about four times the
// live size before a full collection, which put a 100,000-step apply near 780 MB. Growing
// by 10% (and 8 MB semi-spaces) keeps it near 300 MB for about 10% more CPU than V8's
// default (docs/decisions.md, "Engine performance"). Set before anything is allocated.
v8.setFlagsFromString("--heap-growing-percent=10");
v8.setFlagsFromString("--max-semi-space-size=8");

// The only place that ends the process with a code (DESIGN §5): everything else returns it.
void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
