// Runs the runflow CLI in this process exactly as `runflow ARGS` (dist/bin/runflow.js) and, at
// exit, writes to stderr as one JSON line the peak resident memory and the CPU time used
// (user and system, in ms, every thread of the process): what the benchmarks measure.
process.on("exit", () => {
  const usage = process.resourceUsage();
  const figures = {
    maxRssMb: usage.maxRSS / 1024,
    userMs: usage.userCPUTime / 1000,
    systemMs: usage.systemCPUTime / 1000,
  };
  process.stderr.write(`\n${JSON.stringify(figures)}\n`);
});
// RUNFLOW_BENCH_CLI (bench/lib.js) runs another build instead, as every other figure does.
const { pathToFileURL } = await import("node:url");
await import(
  process.env.RUNFLOW_BENCH_CLI ? pathToFileURL(process.env.RUNFLOW_BENCH_CLI).href : "../dist/bin/runflow.js"
);
