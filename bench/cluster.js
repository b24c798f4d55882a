// The cluster's figures (issue 12, SPEC §10): a private PostgreSQL 15 (started as the tests
// start theirs: test/helpers/postgres-server.js), real `runflow worker` processes and a real
// `runflow apply --state postgres://…` that only follows the run (RUNFLOW_APPLY_WORKER_CONCURRENCY
// =0, so every step is a worker's), the emulator in a process of its own on loopback.
//   1. zero-duration steps (--no-download) at concurrency 64: steps/s with 1, 2 and 4 worker
//      processes, beside the same workflow in one process on SQLite; CPU per step, the sum of
//      user + system time of every runflow process (the apply's whole life, each worker's
//      over the run; PostgreSQL's own is not counted);
//   2. takeover after a SIGKILL: a worker holding requests (held in progress by the emulator)
//      is killed; the time from the kill to the emulator's first request for one of its steps
//      (another worker re-attaching to it), from the emulator's request log;
//   3. makespan ÷ ideal for 200 steps of 2 s at concurrency 20 with 3 workers: the apply's
//      spawn → exit (and the run's own recorded time) over ceil(200 / 20) × 2 s.
// Each scenario gets a fresh database on the one server, so nothing is reused between them.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { startPostgres } from "../test/helpers/postgres-server.js";
import { CLI, removeDir, ROOT, startEmulatorProcess, tempDir, TOKEN, writeBatch } from "./lib.js";

const ZERO_POLL = "{ interval: 10ms, max_interval: 100ms }";
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** User + system CPU a live process has used so far, in ms (/proc/PID/stat, Linux). */
function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The fields after the command name (which may hold spaces) start at its closing paren.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** The environment of a runflow process against the emulator (the token, the API's URL). */
function apiEnvironment(baseUrl, extra = {}) {
  const env = { ...process.env, RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: baseUrl, ...extra };
  delete env.RUNFLOW_STATE;
  delete env.RUNFLOW_QUEUE;
  return env;
}

/** `runflow worker` in a child process; `ready` resolves once it says it takes steps. */
function startWorker({ url, name, concurrency, dir, baseUrl }) {
  const child = spawn(
    process.execPath,
    [CLI, "worker", "--state", url, "--name", name, "--concurrency", String(concurrency), "--quiet"],
    { cwd: dir, env: apiEnvironment(baseUrl), stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4_000)));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith(`worker ${name} taking steps`)) resolve();
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`worker ${name} ended (${code ?? signal}) before it took steps:\n${stderr}`)),
    );
  });
  ready.catch(() => undefined);
  return {
    name,
    child,
    ready,
    exited,
    cpuMs: () => cpuMsOf(child.pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** `runflow apply` (through bench/apply-child.js, which reports its CPU at exit), following only. */
function startApply({ dir, file, url, baseUrl, extra = [], timeoutMs = 300_000 }) {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, "bench", "apply-child.js"),
      "apply",
      file,
      "--quiet",
      ...(url ? ["--state", url] : []),
      ...extra,
    ],
    {
      cwd: dir,
      env: apiEnvironment(baseUrl, url ? { RUNFLOW_APPLY_WORKER_CONCURRENCY: "0" } : {}),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout = (stdout + chunk).slice(-20_000)));
  child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-20_000)));
  // A run that never ends (a step the cluster lost) fails the figure instead of hanging.
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      const line = stderr
        .trim()
        .split("\n")
        .findLast((text) => text.startsWith('{"maxRssMb"'));
      const figures = line ? JSON.parse(line) : { userMs: NaN, systemMs: NaN };
      resolve({
        code,
        stdout,
        stderr,
        ms: performance.now() - started,
        cpuMs: figures.userMs + figures.systemMs,
      });
    }),
  );
}

function check(what, result) {
  if (result.code !== 0)
    throw new Error(
      `${what} exited ${result.code}:\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-2000)}`,
    );
  return result;
}

async function query(url, sql, values = []) {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** How long the apply's run took, as it recorded itself in PostgreSQL. */
async function recordedRunMs(url) {
  const [run] = await query(url, "SELECT started_at, finished_at FROM runs WHERE kind = 'apply'");
  return Number(run.finished_at) - Number(run.started_at);
}

/** Starts `count` workers on `url` and waits until every one takes steps. */
async function startWorkers(count, options) {
  const workers = Array.from({ length: count }, (_, i) => startWorker({ ...options, name: `w${i + 1}` }));
  try {
    await Promise.all(workers.map((worker) => worker.ready));
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.stop()));
    throw error;
  }
  return workers;
}

async function throughputScenario({ server, emulator, steps, workerCount, row, log }) {
  const dir = tempDir("cluster-throughput");
  const label =
    workerCount === 0
      ? "SQLite, one process"
      : `PostgreSQL, ${workerCount} worker${workerCount > 1 ? "s" : ""}`;
  log(`cluster throughput: ${steps} zero-duration steps at concurrency 64 (--no-download), ${label} …`);
  await emulator.control("reset", {});
  writeBatch(dir, { name: "zero", count: steps, concurrency: 64, mediaBase: emulator.url, poll: ZERO_POLL });
  let workers = [];
  try {
    if (workerCount === 0) {
      const applied = check(
        "the SQLite apply",
        await startApply({ dir, file: "zero.yaml", baseUrl: emulator.url, extra: ["--no-download"] }),
      );
      // The run's own time, as bench/run.js's throughput reads it: from the SQLite file.
      const { openSqliteStore } = await import("../dist/store/sqlite.js");
      const store = openSqliteStore(path.join(dir, "state", "runflow.db"));
      const run = store.latestRun();
      store.close();
      return report(row, label, steps, run.finishedAt - run.startedAt, applied.cpuMs);
    }
    const url = await server.createDatabase();
    workers = await startWorkers(workerCount, { url, concurrency: 64, dir, baseUrl: emulator.url });
    const before = workers.map((worker) => worker.cpuMs());
    const applied = check(
      `the apply with ${workerCount} workers`,
      await startApply({ dir, file: "zero.yaml", url, baseUrl: emulator.url, extra: ["--no-download"] }),
    );
    const workersCpu = workers.reduce((sum, worker, i) => sum + worker.cpuMs() - before[i], 0);
    return report(row, label, steps, await recordedRunMs(url), applied.cpuMs + workersCpu);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    removeDir(dir);
  }
}

function report(row, label, steps, runMs, cpuMs) {
  const perSecond = (steps / runMs) * 1000;
  row(
    `cluster: steps/s, zero-duration, concurrency 64, ${label}`,
    `${Math.round(perSecond)} steps/s`,
    "",
    undefined,
  );
  row(
    `cluster: CPU per step (user + system, every process), ${label}`,
    `${(cpuMs / steps).toFixed(2)} ms`,
    "",
    undefined,
  );
  return { perSecond, cpuMs };
}

/** The emulator's log entries (its latest 1,000 calls) after `afterSeq`, for these request ids. */
async function callsFor(emulator, requestIds, afterSeq) {
  const entries = await emulator.control("requests");
  return entries.filter(
    (entry) =>
      entry.seq > afterSeq && [...requestIds].some((id) => entry.path.includes(encodeURIComponent(id))),
  );
}

/**
 * One takeover: 2 workers hold 8 requests the emulator keeps in progress; the one holding
 * more is SIGKILLed; the time from the kill to the first request for one of its steps.
 */
async function takeoverOnce({ server, emulator, log }) {
  const dir = tempDir("cluster-takeover");
  const url = await server.createDatabase();
  await emulator.control("reset", {});
  writeBatch(dir, { name: "held", count: 8, concurrency: 8, mediaBase: emulator.url });
  // Every request stays in progress until released: the killed worker's steps are still out.
  const yaml = path.join(dir, "held.yaml");
  const text = readFileSync(yaml, "utf8").replace(
    '"${{ item.prompt }}"',
    '"${{ item.prompt }} [emulator:hold]"',
  );
  writeFileSync(yaml, text);
  const workers = await startWorkers(2, { url, concurrency: 8, dir, baseUrl: emulator.url });
  let applied;
  try {
    applied = startApply({ dir, file: "held.yaml", url, baseUrl: emulator.url, extra: ["--no-download"] });
    const deadline = Date.now() + 60_000;
    let holders;
    for (;;) {
      if (Date.now() > deadline) throw new Error("the 8 requests were not all held within 60 s");
      const state = await emulator.control("state");
      if (state.held === 8) {
        holders = await query(
          url,
          "SELECT name, doing FROM workers WHERE doing <> '' ORDER BY length(doing) DESC",
        );
        // Every request id recorded (the fence writes it before the worker polls).
        const ids = await query(url, "SELECT count(*)::int AS n FROM steps WHERE request_id IS NOT NULL");
        if (holders.length > 0 && ids[0].n === 8) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const victim = workers.find((worker) => worker.name === holders[0].name);
    const addresses = holders[0].doing.split("\n").map((line) => line.split(" ")[1]);
    const ids = new Set(
      (await query(url, "SELECT request_id FROM steps WHERE address = ANY($1)", [addresses])).map(
        (r) => r.request_id,
      ),
    );
    const seqBefore = (await emulator.control("state")).calls.total;
    victim.child.kill("SIGKILL");
    const killedAt = Date.now();
    await victim.exited;
    let firstAt;
    while (firstAt === undefined) {
      if (Date.now() - killedAt > 60_000)
        throw new Error("no request for the killed worker's steps within 60 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
      const calls = await callsFor(emulator, ids, seqBefore);
      if (calls.length > 0) firstAt = Math.min(...calls.map((call) => Date.parse(call.at)));
    }
    log(
      `  ${victim.name} held ${addresses.length} step(s): first request for one of them ${firstAt - killedAt} ms after the kill`,
    );
    await emulator.control("release", {});
    check("the held apply", await applied);
    return firstAt - killedAt;
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    removeDir(dir);
  }
}

/** Quantiles of a list of ms figures, as "median / max". */
function medianMax(values) {
  return values.length === 0 ? "–" : `${Math.round(median(values))} / ${Math.round(Math.max(...values))} ms`;
}

/**
 * Where the makespan's time over the ideal goes, from the emulator (its request details and
 * log) and the apply's spawn and exit: spawn → first submission; the first wave's own spread
 * (first → twentieth submission); each later wave's spread — the slot freed by the i-th job
 * end (in end order) is taken by the (i + concurrency)-th submission, so the gap between the
 * two is what a slot stood idle — as median / max per wave; how long after its end each job's
 * end was learned (the first status or result call after it, from the log's latest 1,000
 * calls); last job end → the apply's exit.
 */
async function makespanLosses({ emulator, url, spawnedAt, exitedAt, concurrency, log }) {
  const ids = (await query(url, "SELECT request_id FROM steps WHERE request_id IS NOT NULL")).map(
    (row) => row.request_id,
  );
  const jobs = await Promise.all(ids.map((id) => emulator.control(`requests/${encodeURIComponent(id)}`)));
  const submits = jobs.map((job) => Date.parse(job.created_at)).sort((a, b) => a - b);
  const ends = jobs
    .map((job) => Date.parse(job.started_at ?? job.created_at) + job.duration_ms)
    .sort((a, b) => a - b);
  const endOf = new Map(jobs.map((job) => [job.request_id, Date.parse(job.started_at) + job.duration_ms]));
  const learned = new Map();
  for (const entry of await emulator.control("requests")) {
    if (entry.endpoint !== "status" && entry.endpoint !== "result") continue;
    const id = decodeURIComponent(entry.path.split("/").at(-2) ?? "");
    const end = endOf.get(id);
    const at = Date.parse(entry.at);
    if (end !== undefined && at >= end && !learned.has(id)) learned.set(id, at - end);
  }
  const waves = [];
  for (let start = concurrency; start < submits.length; start += concurrency) {
    const gaps = [];
    for (let i = start; i < Math.min(submits.length, start + concurrency); i++)
      gaps.push(submits[i] - ends[i - concurrency]);
    waves.push(gaps);
  }
  // The attempts' own times: started_at is taken once the slot is held, before the claim.
  const attempts = await query(
    url,
    "SELECT a.started_at, a.request_id FROM attempts a WHERE a.request_id IS NOT NULL",
  );
  const [run] = await query(url, "SELECT started_at FROM runs WHERE kind = 'apply'");
  const createdOf = new Map(jobs.map((job) => [job.request_id, Date.parse(job.created_at)]));
  const claims = attempts.map((a) => Number(a.started_at)).sort((a, b) => a - b);
  const claimToPost = attempts.map((a) => createdOf.get(a.request_id) - Number(a.started_at));
  const ms = (value) => `${Math.round(value)} ms`;
  log(
    `  spawn → run recorded ${ms(Number(run.started_at) - spawnedAt)} → first slot held ${ms(claims[0] - Number(run.started_at))} → first submission ${ms(submits[0] - claims[0])}`,
  );
  log(
    `  first wave's slots held: first → last ${ms(claims[concurrency - 1] - claims[0])}; a slot held → its POST arrived, median / max: ${medianMax(claimToPost)}`,
  );
  log(`  spawn → first submission: ${ms(submits[0] - spawnedAt)}`);
  log(
    `  first wave: first → last of its ${concurrency} submissions ${ms(submits[Math.min(concurrency, submits.length) - 1] - submits[0])}`,
  );
  log(
    `  later waves, a slot's job end → its next submission, median / max: ${waves.map(medianMax).join("; ")}`,
  );
  const allGaps = waves.flat();
  log(
    `  all later submissions: median ${ms(median(allGaps))}, mean ${ms(allGaps.reduce((a, b) => a + b, 0) / allGaps.length)}, max ${ms(Math.max(...allGaps))}`,
  );
  log(
    `  job end → first status/result after it (${learned.size} jobs in the log): ${medianMax([...learned.values()])}`,
  );
  // The same per wave (jobs in submission order): the first wave's is the guessing schedule's
  // (no duration known yet in any worker), the later ones' the learned duration's.
  const bySubmission = [...jobs].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  const lagWaves = [];
  for (let start = 0; start < bySubmission.length; start += concurrency) {
    const lags = bySubmission
      .slice(start, start + concurrency)
      .map((job) => learned.get(job.request_id))
      .filter((lag) => lag !== undefined);
    lagWaves.push(medianMax(lags));
  }
  log(`  … per wave, median / max: ${lagWaves.join("; ")}`);
  log(`  last job end → apply exit: ${ms(exitedAt - ends.at(-1))}`);
  log(
    `  first submission → last end: ${ms(ends.at(-1) - submits[0])} (ideal ${ms(Math.ceil(submits.length / concurrency) * (ends[0] - submits[0]))} by the first job's length)`,
  );
}

async function makespanScenario({ server, row, log, steps, decompose = false }) {
  const concurrency = 20;
  const jobMs = 2_000;
  const ideal = Math.ceil(steps / concurrency) * jobMs;
  const emulator = await startEmulatorProcess(["--duration", `${jobMs}ms`]);
  const dir = tempDir("cluster-makespan");
  let workers = [];
  try {
    const url = await server.createDatabase();
    writeBatch(dir, { name: "makespan", count: steps, concurrency, mediaBase: emulator.url });
    workers = await startWorkers(3, { url, concurrency, dir, baseUrl: emulator.url });
    log(
      `cluster makespan: ${steps} steps of ${jobMs} ms at concurrency ${concurrency}, 3 workers, apply following …`,
    );
    const spawnedAt = Date.now();
    const applied = check(
      "the makespan apply",
      await startApply({ dir, file: "makespan.yaml", url, baseUrl: emulator.url }),
    );
    const exitedAt = Date.now();
    const state = await emulator.control("state");
    const polls = ((state.calls.byEndpoint.status ?? 0) + (state.calls.byEndpoint.result ?? 0)) / steps;
    const ratio = applied.ms / ideal;
    const recorded = (await recordedRunMs(url)) / ideal;
    row(
      `cluster: makespan ÷ ideal, ${steps} × 2 s at ${concurrency}, 3 workers (apply spawn → exit)`,
      `${ratio.toFixed(3)} (${(applied.ms / 1000).toFixed(2)} s / ${ideal / 1000} s; run's own ${recorded.toFixed(3)})`,
      "≤ 1.05",
      ratio <= 1.05,
    );
    row(`cluster: status+result requests per step (${steps} × 2 s)`, polls.toFixed(2), "", undefined);
    if (decompose) await makespanLosses({ emulator, url, spawnedAt, exitedAt, concurrency, log });
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await emulator.stop();
    removeDir(dir);
  }
}

/**
 * The makespan scenario alone (`--only cluster-makespan`), `runs` times on one server, each
 * followed by where its time over the ideal went.
 */
export async function clusterMakespan({ row, log, quick, runs = 1 }) {
  const server = await startPostgres({ settings: { max_connections: "300" } });
  try {
    for (let i = 0; i < runs; i++)
      await makespanScenario({ server, row, log, steps: quick ? 60 : 200, decompose: true });
  } finally {
    server.stop();
  }
}

/** Every figure of the cluster, on one private PostgreSQL server. */
export async function cluster({ row, log, quick }) {
  const server = await startPostgres({ settings: { max_connections: "300" } });
  try {
    const emulator = await startEmulatorProcess(["--duration", "0"]);
    try {
      const steps = quick ? 500 : 1_000;
      for (const workerCount of [0, 1, 2, 4])
        await throughputScenario({ server, emulator, steps, workerCount, row, log });

      const kills = quick ? 1 : 3;
      log(`cluster takeover: ${kills} SIGKILL(s) of a worker holding requests …`);
      const times = [];
      for (let i = 0; i < kills; i++) times.push(await takeoverOnce({ server, emulator, log }));
      row(
        "cluster: takeover after SIGKILL (kill → its step's next request), median",
        `${(median(times) / 1000).toFixed(2)} s (${times.map((ms) => (ms / 1000).toFixed(2)).join(", ")})`,
        "< 10 s",
        median(times) < 10_000 && Math.max(...times) < 10_000,
      );
    } finally {
      await emulator.stop();
    }
    await makespanScenario({ server, row, log, steps: quick ? 60 : 200 });
  } finally {
    server.stop();
  }
}
