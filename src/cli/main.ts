#!/usr/bin/env node
import v8 from "node:v8";
import { runCli } from "./program.js";

// A batch of 100,000 steps runs for hours and allocates steadily (every poll is a request):
// V8's default lets the heap grow to about four times what is live before it collects,
// which put a 100,000-step apply near 700 MB. Growing by half keeps it near 1.5× for a few
// percent more CPU (bench/run.js measures both). Set before anything is allocated.
v8.setFlagsFromString("--heap-growing-percent=25");
v8.setFlagsFromString("--max-semi-space-size=8");

// The only place that ends the process with a code (DESIGN §5): everything else returns it.
const code = await runCli(process.argv.slice(2));
process.exitCode = code;
