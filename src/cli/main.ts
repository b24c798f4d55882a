#!/usr/bin/env node
import { runCli } from "./program.js";

// The only place that ends the process with a code (DESIGN §5): everything else returns it.
const code = await runCli(process.argv.slice(2));
process.exitCode = code;
