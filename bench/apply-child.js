// Runs the runflow CLI in this process (as `runflow ARGS`) and, at exit, writes the peak
// resident memory to stderr as one JSON line: what the RSS benchmark measures.
import { runCli } from "../dist/cli/program.js";

process.on("exit", () => {
  process.stderr.write(`\n${JSON.stringify({ maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
});
process.exitCode = await runCli(process.argv.slice(2));
