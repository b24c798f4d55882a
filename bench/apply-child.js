// Runs the runflow CLI in this process exactly as `runflow ARGS` (dist/cli/main.js) and, at
// exit, writes the peak resident memory to stderr as one JSON line: what the RSS benchmark
// measures.
process.on("exit", () => {
  process.stderr.write(`\n${JSON.stringify({ maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
});
await import("../dist/cli/main.js");
