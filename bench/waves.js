// Where a batch run loses time against the ideal (issue 14), from the emulator's request log:
// runflow's whole process (`runflow apply`, spawned) beside the baseline script, on the same
// emulator in a process of its own. For each job: its submit's arrival, its end (creation +
// its duration, from the emulator's own record), the first /status after its end (the poll
// that saw it finished), its /result; for each slot refill, the time from the k-th finish
// seen to the (k + concurrency)-th submit. Printed per wave, with the time before the first
// submit and after the last result.
//   node bench/waves.js [STEPS] [CONCURRENCY] [--in-process]
// (default 40 8; build first; RUNFLOW_BENCH_CLI times another build; --in-process applies
// in this process, as bench/run.js's makespan section does: no process start in the figures)
import { spawn } from "node:child_process";
import path from "node:path";
import { CLI, removeDir, ROOT, startEmulatorProcess, tempDir, TOKEN, writeBatch } from "./lib.js";

const inProcess = process.argv.includes("--in-process");
const [steps, concurrency] = process.argv
  .slice(2)
  .filter((arg) => !arg.startsWith("--"))
  .map(Number);
const STEPS = steps || 40;
const CONCURRENCY = concurrency || 8;
const JOB_MS = 2_000;

function timedSpawn(args, { cwd, env }) {
  return new Promise((resolve, reject) => {
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4_000)));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`exited ${code}: ${stderr}`));
      else resolve({ spawnedAt, exitedAt: Date.now() });
    });
  });
}

/** As bench/run.js's makespan section runs it: applyWorkflow in this process. */
async function appliedInProcess(file, dir, baseUrl) {
  const { applyWorkflow } = await import("../dist/app/index.js");
  const { EventBus } = await import("../dist/engine/events.js");
  const spawnedAt = Date.now();
  const outcome = await applyWorkflow(
    { file, cwd: dir, env: {}, api: { baseUrl, token: TOKEN } },
    { events: new EventBus() },
  );
  if (outcome.exitCode !== 0) throw new Error(`apply ended ${outcome.exitCode}`);
  return { spawnedAt, exitedAt: Date.now() };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** The request id of a /v1/requests/ID/status|result path. */
const requestIdOf = (entry) => decodeURIComponent(entry.path.split("/")[3]);

async function breakdown(emulator, { spawnedAt, exitedAt }) {
  const log = await emulator.control("requests");
  const at = (entry) => Date.parse(entry.at) - spawnedAt;
  const submits = log.filter((entry) => entry.endpoint === "submit").map(at);
  const byId = new Map();
  for (const entry of log) {
    if (entry.endpoint !== "status" && entry.endpoint !== "result") continue;
    const id = requestIdOf(entry);
    const calls = byId.get(id) ?? { statuses: [], results: [] };
    (entry.endpoint === "status" ? calls.statuses : calls.results).push(at(entry));
    byId.set(id, calls);
  }
  const jobs = [];
  for (const [id, calls] of byId) {
    const details = await emulator.control(`requests/${encodeURIComponent(id)}`);
    const created = Date.parse(details.created_at) - spawnedAt;
    const end = Date.parse(details.started_at) - spawnedAt + details.duration_ms;
    const seen = calls.statuses.find((time) => time >= end) ?? calls.results.find((time) => time >= end);
    jobs.push({ created, end, seen, result: Math.min(...calls.results), polls: calls.statuses.length });
  }
  jobs.sort((a, b) => a.created - b.created);
  submits.sort((a, b) => a - b);
  const seenSorted = jobs.map((job) => job.seen).sort((a, b) => a - b);
  const waves = [];
  for (let first = 0; first < jobs.length; first += CONCURRENCY) {
    const wave = jobs.slice(first, first + CONCURRENCY);
    const refills = [];
    for (let index = first; index < first + wave.length; index++) {
      if (index >= CONCURRENCY) refills.push(submits[index] - seenSorted[index - CONCURRENCY]);
    }
    waves.push({
      wave: waves.length + 1,
      firstSubmit: Math.min(...wave.map((job) => job.created)),
      lastEnd: Math.max(...wave.map((job) => job.end)),
      endToSeenMed: median(wave.map((job) => job.seen - job.end)),
      endToSeenMax: Math.max(...wave.map((job) => job.seen - job.end)),
      seenToResultMed: median(wave.map((job) => job.result - job.seen)),
      refillMed: refills.length ? median(refills) : undefined,
      refillMax: refills.length ? Math.max(...refills) : undefined,
      polls: wave.reduce((sum, job) => sum + job.polls, 0) / wave.length,
    });
  }
  const lastResult = Math.max(...jobs.map((job) => job.result));
  return {
    total: exitedAt - spawnedAt,
    firstSubmit: submits[0],
    lastSubmit: submits.at(-1),
    lastEnd: Math.max(...jobs.map((job) => job.end)),
    lastResult,
    tail: exitedAt - spawnedAt - lastResult,
    waves,
  };
}

function print(name, figures) {
  const f = (ms) => (ms === undefined ? "   -" : String(Math.round(ms)).padStart(5));
  process.stdout.write(
    `${name}: total ${f(figures.total)} ms  spawn→first submit ${f(figures.firstSubmit)}  ` +
      `last submit ${f(figures.lastSubmit)}  last end ${f(figures.lastEnd)}  last result ${f(figures.lastResult)}  ` +
      `result→exit ${f(figures.tail)}\n`,
  );
  process.stdout.write(
    "  wave first-submit last-end end→seen(med/max) seen→result(med) refill(med/max) polls/job\n",
  );
  for (const w of figures.waves) {
    process.stdout.write(
      `  ${String(w.wave).padStart(4)} ${f(w.firstSubmit)}      ${f(w.lastEnd)}   ${f(w.endToSeenMed)}/${f(w.endToSeenMax)}      ` +
        `${f(w.seenToResultMed)}        ${f(w.refillMed)}/${f(w.refillMax)}     ${w.polls.toFixed(2)}\n`,
    );
  }
}

const emulator = await startEmulatorProcess(["--duration", `${JOB_MS}ms`]);
const dir = tempDir("waves");
try {
  const env = { ...process.env, RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: emulator.url };
  delete env.RUNFLOW_STATE;
  writeBatch(dir, { name: "waves", count: STEPS, concurrency: CONCURRENCY, mediaBase: emulator.url });
  const ideal = Math.ceil(STEPS / CONCURRENCY) * JOB_MS;
  const runflow = await breakdown(
    emulator,
    inProcess
      ? await appliedInProcess(path.join(dir, "waves.yaml"), dir, emulator.url)
      : await timedSpawn([CLI, "apply", "waves.yaml", "--quiet"], { cwd: dir, env }),
  );
  print(`runflow (${(runflow.total / ideal).toFixed(3)} × ideal)`, runflow);
  await emulator.control("reset", {});
  const baseline = await breakdown(
    emulator,
    await timedSpawn(
      [path.join(ROOT, "bench", "baseline.js"), String(STEPS), String(CONCURRENCY), path.join(dir, "b")],
      { cwd: dir, env },
    ),
  );
  print(`baseline (${(baseline.total / ideal).toFixed(3)} × ideal)`, baseline);
} finally {
  await emulator.stop();
  removeDir(dir);
}
