// runflow's benchmarks, in one invocation (`npm run bench`, which builds first):
//   1. makespan ÷ ideal for 200 steps of 2 s at concurrency 20, runflow beside the baseline
//      (bench/baseline.js), and status/result requests per completed step for both;
//   2. throughput with zero-duration jobs at concurrency 64, through the real CLI, with
//      --no-download and with downloads: steps/s and CPU ms per step (user + system);
//   3. peak RSS of a 100,000-step apply with zero-duration jobs, and the time from a
//      restart after SIGKILL to the first new request;
//   4. bench/validate-plan.js (validate + plan of a 100,000-row workflow).
//   5. bench/tty-render.js (the live view fed 10,000 jobs of events: CPU per frame, height).
//   6. bench/whole-process.js, the process as a user times it, beside the baseline script and
//      a bare `node -e 0`: `startup` (spawn → first request and spawn → exit of a 1-step
//      apply; `runflow --version` and `status`), `makespan-40` (40 × 2 s at concurrency 8, both
//      in turn, 3 rounds), `makespan-40-varied` (the same with durations of 1.8–2.2 s).
//   7. bench/cluster.js, several processes on a private PostgreSQL 15 (`cluster`): steps/s and
//      CPU per step with 1, 2 and 4 `runflow worker` processes beside SQLite in one process,
//      takeover after a worker's SIGKILL, 200 × 2 s at concurrency 20 with 3 workers.
// The emulator always runs in a process of its own, so its CPU and memory are not counted.
// Options: --quick (smaller sizes, for a smoke run), --steps N (size of benchmark 3),
// --spawns N (spawns per startup figure, default 7), --only makespan|throughput|big|
// validate-plan|tty|startup|makespan-40|makespan-40-varied|cluster|cluster-makespan (repeatable): `--only startup`
// takes seconds; `--only cluster-makespan` (--runs N, default 1) is the cluster's 200 × 2 s alone,
// each run with where its time over the ideal went; `--rounds N` (default 3) is how many times
// `makespan-40` and `makespan-40-varied` run runflow and the baseline in turn (medians).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { applyWorkflow } from "../dist/app/index.js";
import { EventBus } from "../dist/engine/events.js";
import { openSqliteStore } from "../dist/store/sqlite.js";
import { runBaseline } from "./baseline.js";
import { cluster, clusterMakespan } from "./cluster.js";
import { makespan40, startup } from "./whole-process.js";
import {
  batchBodies,
  firstCallAt,
  HAILUO,
  pollCalls,
  removeDir,
  ROOT,
  startEmulatorProcess,
  tempDir,
  TOKEN,
  writeBatch,
} from "./lib.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const stepsArg = args.indexOf("--steps");
const spawnsArg = args.indexOf("--spawns");
const runsArg = args.indexOf("--runs");
const roundsArg = args.indexOf("--rounds");
const SIZES = {
  makespanSteps: quick ? 40 : 200,
  makespanConcurrency: 20,
  jobMs: 2_000,
  throughputSteps: quick ? 1_000 : 5_000,
  bigSteps: stepsArg >= 0 ? Number(args[stepsArg + 1]) : quick ? 5_000 : 100_000,
  startupSpawns: spawnsArg >= 0 ? Number(args[spawnsArg + 1]) : quick ? 3 : 7,
  makespanRuns: runsArg >= 0 ? Number(args[runsArg + 1]) : 1,
  makespan40Rounds: roundsArg >= 0 ? Number(args[roundsArg + 1]) : quick ? 1 : 3,
};
const rows = [];
const row = (name, value, target, ok) => rows.push({ name, value, target, ok });
const log = (text) => process.stderr.write(`${text}\n`);

async function applyInProcess(file, dir, baseUrl, extra = {}) {
  return applyWorkflow(
    { file, cwd: dir, env: {}, api: { baseUrl, token: TOKEN }, ...extra },
    { events: new EventBus() },
  );
}

async function makespan() {
  const { makespanSteps: steps, makespanConcurrency: concurrency, jobMs } = SIZES;
  const ideal = Math.ceil(steps / concurrency) * jobMs;
  const emulator = await startEmulatorProcess(["--duration", `${jobMs}ms`]);
  const dir = tempDir("makespan");
  try {
    log(`makespan: runflow, ${steps} steps of ${jobMs} ms at concurrency ${concurrency} …`);
    const file = writeBatch(dir, { name: "makespan", count: steps, concurrency, mediaBase: emulator.url });
    let started = performance.now();
    const outcome = await applyInProcess(file, dir, emulator.url);
    const runflowMs = performance.now() - started;
    if (outcome.exitCode !== 0)
      throw new Error(`runflow's makespan run failed: ${JSON.stringify(outcome.counts)}`);
    const runflowPolls = pollCalls(await emulator.control("state")) / steps;

    await emulator.control("reset", {});
    log("makespan: baseline …");
    started = performance.now();
    const baseline = await runBaseline({
      baseUrl: emulator.url,
      token: TOKEN,
      model: HAILUO,
      bodies: batchBodies(steps, emulator.url),
      concurrency,
      outDir: path.join(dir, "baseline"),
    });
    const baselineMs = performance.now() - started;
    if (baseline.succeeded !== steps) throw new Error("the baseline did not complete every step");
    const baselinePolls = pollCalls(await emulator.control("state")) / steps;

    const ratio = runflowMs / ideal;
    row(
      "makespan ÷ ideal, runflow",
      `${ratio.toFixed(3)} (${(runflowMs / 1000).toFixed(2)} s / ${ideal / 1000} s)`,
      "≤ 1.03",
      ratio <= 1.03,
    );
    row(
      "makespan ÷ ideal, baseline",
      `${(baselineMs / ideal).toFixed(3)} (${(baselineMs / 1000).toFixed(2)} s)`,
      "",
      undefined,
    );
    row("status+result requests per step, runflow", runflowPolls.toFixed(2), "≤ 2.1", runflowPolls <= 2.1);
    row("status+result requests per step, baseline", baselinePolls.toFixed(2), "", undefined);
  } finally {
    await emulator.stop();
    removeDir(dir);
  }
}

/** The figures apply-child.js writes at exit: { maxRssMb, userMs, systemMs }. */
function childFigures(stderr) {
  const line = stderr
    .trim()
    .split("\n")
    .findLast((text) => text.startsWith('{"maxRssMb"'));
  return line ? JSON.parse(line) : undefined;
}

/** How long the latest run of the state database in `dir` took, as it recorded itself. */
function recordedRunMs(dir) {
  const store = openSqliteStore(path.join(dir, "state", "runflow.db"));
  try {
    const run = store.latestRun();
    return run.finishedAt - run.startedAt;
  } finally {
    store.close();
  }
}

// The real CLI (its heap settings included), twice: `--no-download` measures the engine
// (scheduling, state, the API); with downloads, every output is also written, fsynced and
// renamed into place, kernel work that shows as system CPU. Steps/s is over the run's own
// recorded time; CPU per step is the whole process's, startup included.
async function throughput() {
  const steps = SIZES.throughputSteps;
  const emulator = await startEmulatorProcess(["--duration", "0"]);
  try {
    for (const download of [false, true]) {
      const dir = tempDir("throughput");
      try {
        const label = download ? "with downloads" : "--no-download";
        log(`throughput: ${steps} zero-duration steps at concurrency 64, ${label} …`);
        writeBatch(dir, {
          name: "throughput",
          count: steps,
          concurrency: 64,
          mediaBase: emulator.url,
          poll: "{ interval: 10ms, max_interval: 100ms }",
        });
        const run = startApply(dir, "throughput.yaml", emulator.url, download ? [] : ["--no-download"]);
        const done = await run.exited;
        if (done.code !== 0)
          throw new Error(`the throughput run exited ${done.code}:\n${done.stderr.slice(-2000)}`);
        const perSecond = (steps / recordedRunMs(dir)) * 1000;
        const figures = childFigures(done.stderr);
        const cpuPerStep = (milliseconds) => `${(milliseconds / steps).toFixed(2)} ms`;
        row(
          `throughput, zero-duration jobs, concurrency 64, ${label}`,
          `${Math.round(perSecond)} steps/s`,
          download ? "" : "≥ 1,000",
          download ? undefined : perSecond >= 1_000,
        );
        row(
          `CPU per step, ${label} (user + system)`,
          `${cpuPerStep(figures.userMs + figures.systemMs)} (${cpuPerStep(figures.userMs)} + ${cpuPerStep(figures.systemMs)})`,
          "",
          undefined,
        );
      } finally {
        removeDir(dir);
      }
    }
  } finally {
    await emulator.stop();
  }
}

/** Peak resident memory (VmHWM) of a live process, in MB; undefined where /proc is not there. */
function peakRssOf(pid) {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The default state database (in the run's folder), whatever this shell's RUNFLOW_STATE says. */
function withoutStateVariable(env) {
  delete env.RUNFLOW_STATE;
  return env;
}

function startApply(dir, file, baseUrl, extra = ["--no-download"]) {
  const child = spawn(
    process.execPath,
    [path.join(ROOT, "bench", "apply-child.js"), "apply", file, "--quiet", ...extra],
    {
      cwd: dir,
      env: withoutStateVariable({ ...process.env, RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: baseUrl }),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  // With --quiet, stdout is the summary only: kept to explain a failed run.
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout = (stdout + chunk).slice(-20_000)));
  child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-20_000)));
  const exited = new Promise((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, stderr, stdout })),
  );
  return { child, exited };
}

async function remoteCalls(emulator) {
  const by = (await emulator.control("state")).calls.byEndpoint;
  return (by.submit ?? 0) + (by.status ?? 0) + (by.result ?? 0);
}

async function bigApplyAndResume() {
  const steps = SIZES.bigSteps;
  const emulator = await startEmulatorProcess(["--duration", "0"]);
  const dir = tempDir("big");
  try {
    const file = writeBatch(dir, {
      name: "big",
      count: steps,
      concurrency: 64,
      mediaBase: emulator.url,
      poll: "{ interval: 10ms, max_interval: 100ms }",
    });
    log(`big apply: ${steps} zero-duration steps (--no-download), killed half way, then resumed …`);
    const first = startApply(dir, "big.yaml", emulator.url);
    let firstEnded;
    first.exited.then((result) => (firstEnded = result));
    let firstPeak = 0;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (firstEnded)
        throw new Error(`the apply ended before it was killed: ${firstEnded.stderr.slice(-2000)}`);
      firstPeak = Math.max(firstPeak, peakRssOf(first.child.pid) ?? 0);
      const state = await emulator.control("state");
      if (state.requests.succeeded >= steps / 2) break;
    }
    first.child.kill("SIGKILL");
    await first.exited;
    const before = await remoteCalls(emulator);
    const seqBefore = (await emulator.control("state")).calls.total;

    const restartedAt = Date.now();
    const second = startApply(dir, "big.yaml", emulator.url);
    let firstRequestMs;
    let secondPeak = 0;
    let unknownAfterKill = 0;
    const exited = second.exited.then((result) => ({ ...result, done: true }));
    for (let turn = 0; ; turn++) {
      const done = await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve(undefined), 10)),
      ]);
      secondPeak = Math.max(secondPeak, peakRssOf(second.child.pid) ?? 0);
      // The emulator's counters cost it CPU that the restarting runflow would miss: asked
      // every 100 ms only. The time itself comes from the request log, not from this loop.
      if (firstRequestMs === undefined && turn % 10 === 9 && (await remoteCalls(emulator)) > before) {
        const noticedAt = Date.now();
        firstRequestMs = ((await firstCallAt(emulator, seqBefore)) ?? noticedAt) - restartedAt;
      }
      if (done) {
        const reported = childFigures(done.stderr);
        if (reported) secondPeak = Math.max(secondPeak, reported.maxRssMb);
        // Steps whose submission was in flight at the kill are `unknown` (maybe created, so
        // never resubmitted): exit 1 with those alone is the correct end of this benchmark.
        const counts = /— [\d,]+ steps: (.*)$/m.exec(done.stdout)?.[1] ?? "";
        unknownAfterKill = Number((/([\d,]+) unknown/.exec(counts)?.[1] ?? "0").replaceAll(",", ""));
        // The failed group names its states: `30 failed (30 unknown)` is unknown steps alone.
        const onlyUnknown = counts
          .split(/, (?![^(]*\))/)
          .every(
            (part) =>
              /^[\d,]+ (succeeded|reused)$/.test(part) || /^([\d,]+) failed \(\1 unknown\)$/.test(part),
          );
        if (done.code !== 0 && !(done.code === 1 && onlyUnknown))
          throw new Error(
            `the resumed apply exited ${done.code}:\n${done.stdout.slice(-3000)}\n${done.stderr.slice(-2000)}`,
          );
        break;
      }
    }
    const peak = Math.max(firstPeak, secondPeak);
    row(
      `peak RSS, ${steps.toLocaleString("en")}-step apply`,
      `${Math.round(peak)} MB (first ${Math.round(firstPeak)}, resumed ${Math.round(secondPeak)})`,
      "< 300 MB",
      peak < 300,
    );
    row(
      "restart after SIGKILL → first new request",
      `${((firstRequestMs ?? NaN) / 1000).toFixed(2)} s`,
      "< 2 s",
      firstRequestMs < 2_000,
    );
    row("steps left unknown by the SIGKILL (not resubmitted)", String(unknownAfterKill), "", undefined);
  } finally {
    await emulator.stop();
    removeDir(dir);
  }
}

function validatePlan() {
  log("validate + plan of a 100,000-row workflow (bench/validate-plan.js) …");
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(ROOT, "bench", "validate-plan.js"), String(quick ? 10_000 : 100_000)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.once("exit", () => {
      try {
        const result = JSON.parse(out);
        row(
          `validate + plan, ${result.rows.toLocaleString("en")} rows (${result.steps.toLocaleString("en")} steps)`,
          `${(result.totalMs / 1000).toFixed(2)} s, ${result.peakRssMb} MB`,
          "< 5 s, < 500 MB",
          result.totalMs < 5_000 && result.peakRssMb < 500,
        );
        resolve();
      } catch (error) {
        reject(error);
      }
    });
  });
}

function ttyView() {
  log("live view fed 10,000 jobs × 2 steps of events (bench/tty-render.js) …");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bench", "tty-render.js"), "10000", "--json"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.once("exit", () => {
      try {
        const result = JSON.parse(out.trim().split("\n").at(-1));
        row(
          "live view, 10,000 jobs: CPU per frame (10 fps)",
          `${result.msPerFrame.toFixed(2)} ms (${(result.msPerFrame * 10).toFixed(0)} ms/s)`,
          "",
          undefined,
        );
        row(
          "live view: CPU per 1,000 events folded",
          `${result.msPer1000Events.toFixed(2)} ms`,
          "",
          undefined,
        );
        row(
          "live view: tallest frame",
          `${result.maxFrameLines} lines`,
          `≤ ${result.rows} rows`,
          result.maxFrameLines <= result.rows,
        );
        resolve();
      } catch (error) {
        reject(error);
      }
    });
  });
}

// `--only NAME` (repeatable) runs just those; a benchmark that fails is reported as MISSED
// and the others still run, so one failure does not hide the other figures.
const BENCHMARKS = {
  makespan,
  throughput,
  big: bigApplyAndResume,
  "validate-plan": validatePlan,
  tty: ttyView,
  startup: () => startup({ row, log, spawns: SIZES.startupSpawns }),
  "makespan-40": () => makespan40({ row, log, rounds: SIZES.makespan40Rounds }),
  "makespan-40-varied": () => makespan40({ row, log, rounds: SIZES.makespan40Rounds, jobs: "varied" }),
  cluster: () => cluster({ row, log, quick }),
  "cluster-makespan": () => clusterMakespan({ row, log, quick, runs: SIZES.makespanRuns }),
};
const only = args.flatMap((arg, index) => (args[index - 1] === "--only" ? [arg] : []));
for (const [name, benchmark] of Object.entries(BENCHMARKS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  try {
    await benchmark();
  } catch (error) {
    log(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    row(name, "failed (see above)", "", false);
    process.exitCode = 1;
  }
}

const width = Math.max(...rows.map((r) => r.name.length));
const valueWidth = Math.max(...rows.map((r) => r.value.length));
console.log(`\n${"benchmark".padEnd(width)}  ${"result".padEnd(valueWidth)}  target`);
for (const r of rows) {
  const verdict = r.ok === undefined ? "" : r.ok ? "  ok" : "  MISSED";
  console.log(`${r.name.padEnd(width)}  ${r.value.padEnd(valueWidth)}  ${r.target}${verdict}`);
}
