// The whole process, as a user times it from the shell (issue 14): each figure is from the
// spawn of a fresh `node` to the first request in the emulator's request log, or to the
// process's exit. runflow beside bench/baseline.js (the hand-written script, run as a
// script) and a bare `node -e 0`, spawned in turn so the machine's load weighs on each alike,
// medians of several spawns. The emulator runs in a process of its own.
//   startup:     apply of a 1-step workflow (spawn → first request, spawn → exit), the
//                baseline's, `node -e 0`; `runflow --version` and `runflow status`; `runflow plan`
//                and an apply whose step is reused (short commands that make requests);
//   makespan-40: 40 jobs of 2 s at concurrency 8 (ideal 10 s), spawn → exit, both;
//   makespan-40-varied: the same batch with durations drawn from 1.8–2.2 s (as a real
//                model's vary), where when each job's end is seen matters, not just how fast.
import { spawn } from "node:child_process";
import path from "node:path";
import {
  CLI,
  firstCallAt,
  pollCalls,
  REMOTE_ENDPOINTS,
  removeDir,
  ROOT,
  startEmulatorProcess,
  tempDir,
  TOKEN,
  writeBatch,
} from "./lib.js";

const BASELINE = path.join(ROOT, "bench", "baseline.js");

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const seconds = (ms) => `${(ms / 1000).toFixed(3)} s`;

/** The environment of a command run against the emulator, with the default state database. */
function apiEnvironment(baseUrl) {
  const env = { ...process.env, RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: baseUrl };
  delete env.RUNFLOW_STATE;
  return env;
}

/**
 * Spawns `node ARGS`; resolves at its exit with when it was spawned (ms since the epoch, to
 * compare with the emulator's log), how long it lived, its exit code and the end of stderr.
 */
function timedSpawn(args, { cwd, env } = {}) {
  return new Promise((resolve, reject) => {
    const spawnedAt = Date.now();
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4_000)));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ spawnedAt, ms: performance.now() - started, code, stderr }));
  });
}

function check(what, result) {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}:\n${result.stderr}`);
  return result;
}

/** Spawns a command that makes requests; resolves with spawn → first request and spawn → exit. */
async function timedRequests(emulator, what, args, options) {
  const seqBefore = (await emulator.control("state")).calls.total;
  const result = check(what, await timedSpawn(args, options));
  const firstAt = await firstCallAt(emulator, seqBefore);
  if (firstAt === undefined) throw new Error(`${what} made no request`);
  return { firstMs: firstAt - result.spawnedAt, exitMs: result.ms };
}

export async function startup({ row, log, spawns }) {
  const emulator = await startEmulatorProcess(["--duration", "0"]);
  const dirs = [];
  const times = {
    node: [],
    runflowFirst: [],
    runflowExit: [],
    baseFirst: [],
    baseExit: [],
    version: [],
    status: [],
    plan: [],
    reused: [],
  };
  try {
    log(
      `startup: ${spawns} spawns each of node -e 0, runflow apply (1 step), the baseline, --version, status, plan, apply again …`,
    );
    const env = apiEnvironment(emulator.url);
    for (let turn = 0; turn < spawns; turn++) {
      times.node.push(check("node -e 0", await timedSpawn(["-e", "0"])).ms);

      // A fresh folder each time: a second apply of the same file would reuse, not submit.
      const dir = tempDir("startup");
      dirs.push(dir);
      writeBatch(dir, { name: "one", count: 1, concurrency: 1, mediaBase: emulator.url });
      const runflow = await timedRequests(emulator, "runflow apply", [CLI, "apply", "one.yaml", "--quiet"], {
        cwd: dir,
        env,
      });
      times.runflowFirst.push(runflow.firstMs);
      times.runflowExit.push(runflow.exitMs);

      const baseline = await timedRequests(
        emulator,
        "the baseline",
        [BASELINE, "1", "1", path.join(dir, "baseline")],
        {
          cwd: dir,
          env,
        },
      );
      times.baseFirst.push(baseline.firstMs);
      times.baseExit.push(baseline.exitMs);

      times.version.push(
        check("runflow --version", await timedSpawn([CLI, "--version"], { cwd: dir, env })).ms,
      );
      // The database the apply above left: one run of one step.
      times.status.push(check("runflow status", await timedSpawn([CLI, "status"], { cwd: dir, env })).ms);
      // Short commands that make requests (a price; the probe): they end soon after them.
      times.plan.push(
        check("runflow plan", await timedSpawn([CLI, "plan", "one.yaml"], { cwd: dir, env })).ms,
      );
      times.reused.push(
        check(
          "runflow apply (reused)",
          await timedSpawn([CLI, "apply", "one.yaml", "--quiet"], { cwd: dir, env }),
        ).ms,
      );
    }
  } finally {
    await emulator.stop();
    for (const dir of dirs) removeDir(dir);
  }
  const m = Object.fromEntries(Object.entries(times).map(([name, values]) => [name, median(values)]));
  const versus = (ms, base, name) => `${seconds(ms)} (${(ms / base).toFixed(2)} × ${name})`;
  row(
    "spawn → first request, runflow apply (1 step)",
    versus(m.runflowFirst, m.baseFirst, "baseline"),
    "≤ 1.5 × baseline",
    m.runflowFirst <= 1.5 * m.baseFirst,
  );
  row("spawn → first request, baseline script", seconds(m.baseFirst), "", undefined);
  row("spawn → exit, runflow apply (1 step)", versus(m.runflowExit, m.baseExit, "baseline"), "", undefined);
  row("spawn → exit, baseline script (1 step)", seconds(m.baseExit), "", undefined);
  row("spawn → exit, node -e 0", seconds(m.node), "", undefined);
  row(
    "runflow --version, spawn → exit",
    versus(m.version, m.node, "node -e 0"),
    "≤ 1.5 × node -e 0",
    m.version <= 1.5 * m.node,
  );
  row(
    "runflow status, spawn → exit",
    versus(m.status, m.node, "node -e 0"),
    "≤ 1.5 × node -e 0",
    m.status <= 1.5 * m.node,
  );
  row(
    "runflow plan (1 step, its price asked), spawn → exit",
    versus(m.plan, m.node, "node -e 0"),
    "",
    undefined,
  );
  row(
    "runflow apply again (its step reused), spawn → exit",
    versus(m.reused, m.node, "node -e 0"),
    "",
    undefined,
  );
}

/**
 * Where a whole process's time went, from the emulator's request log (arrival times) and its
 * record of each request (when it started, how long it ran): spawn → first submission; each
 * later submission against the job whose end freed its slot (the k-th earliest end frees the
 * slot the (k + concurrency)-th submission takes); each job's end → its first status request
 * after that end; the first submission → the last job's end (the run itself, beyond the
 * ideal); the last job's end → the process's exit. All in ms; `entries` are the log's
 * entries of this process only.
 */
async function decomposition(emulator, entries, { spawnedAt, ms, concurrency }) {
  const at = (entry) => Date.parse(entry.at);
  const submits = entries.filter((entry) => entry.endpoint === "submit").map(at);
  submits.sort((a, b) => a - b);
  const idOf = (entry) => decodeURIComponent(entry.path.split("/")[3]);
  const statusAt = new Map();
  for (const entry of entries) {
    if (entry.endpoint !== "status") continue;
    const id = idOf(entry);
    statusAt.set(id, [...(statusAt.get(id) ?? []), at(entry)]);
  }
  const jobs = [];
  const firstLookAfterEnd = [];
  for (const [id, looks] of statusAt) {
    const details = await emulator.control(`requests/${encodeURIComponent(id)}`);
    const job = { startedAt: Date.parse(details.started_at), ms: details.duration_ms };
    jobs.push(job);
    const end = job.startedAt + job.ms;
    const after = looks.filter((look) => look >= end);
    if (after.length > 0) firstLookAfterEnd.push(Math.min(...after) - end);
  }
  const ends = jobs.map((job) => job.startedAt + job.ms).sort((a, b) => a - b);
  const gaps = submits.slice(concurrency).map((submit, k) => submit - ends[k]);
  return {
    ideal: idealMakespan(
      jobs.sort((a, b) => a.startedAt - b.startedAt).map((job) => job.ms),
      concurrency,
    ),
    firstSubmit: submits[0] - spawnedAt,
    lastEndAfterFirstSubmit: ends[ends.length - 1] - submits[0],
    gaps,
    looks: firstLookAfterEnd,
    lastEndToExit: spawnedAt + ms - ends[ends.length - 1],
  };
}

/**
 * The shortest a batch of these durations (in submission order) can take at `concurrency`:
 * each job starts the moment a slot frees, nothing else takes time.
 */
function idealMakespan(durations, concurrency) {
  const slots = Array.from({ length: concurrency }, () => 0);
  for (const ms of durations) {
    const free = slots.indexOf(Math.min(...slots));
    slots[free] += ms;
  }
  return Math.max(...slots);
}

/** The log's API entries after `afterSeq` (the ring keeps the latest 1,000: enough for 40 jobs). */
async function entriesAfter(emulator, afterSeq) {
  const entries = await emulator.control("requests");
  return entries.filter((entry) => entry.seq > afterSeq && REMOTE_ENDPOINTS.has(entry.endpoint));
}

/** 40 jobs, each 2 s or drawn from 1.8–2.2 s: the emulator's `--duration`, and how the rows name it. */
const FORTY_JOBS = {
  fixed: { duration: "2000ms", label: "2 s" },
  varied: { duration: "1800ms-2200ms", label: "1.8–2.2 s" },
};

/** Runs `spawnOf[who]()` for runflow and the baseline in turn, `rounds` times; each run's figures. */
async function alternate({ emulator, spawnOf, rounds, log, label, steps, concurrency }) {
  const runs = { runflow: [], baseline: [] };
  for (let round = 0; round < rounds; round++) {
    for (const who of round % 2 === 0 ? ["runflow", "baseline"] : ["baseline", "runflow"]) {
      log(
        `makespan-40: round ${round + 1} of ${rounds}, ${who}: ${steps} jobs of ${label} at concurrency ${concurrency} …`,
      );
      await emulator.control("reset", {});
      const result = check(who, await spawnOf[who]());
      const polls = pollCalls(await emulator.control("state")) / steps;
      const parts = await decomposition(emulator, await entriesAfter(emulator, 0), {
        ...result,
        concurrency,
      });
      runs[who].push({ ms: result.ms, polls, parts });
    }
  }
  return runs;
}

/**
 * 40 jobs at concurrency 8, runflow and the baseline script in turn, `rounds` times: after
 * one untimed wave to warm the emulator up, the order alternates each round (whichever goes
 * first meets a colder machine), each run in a fresh folder, the emulator reset in between;
 * medians of every figure. One pair alone decided the verdict before, and its ≈ 10 ms
 * differences flipped from one run of the benchmark to the next. `jobs`: "fixed" (2 s each,
 * ideal 10 s: the target) or "varied" (1.8–2.2 s: each run against the ideal of its
 * own draws, idealMakespan).
 */
export async function makespan40({ row, log, rounds = 3, jobs = "fixed" }) {
  const steps = 40;
  const concurrency = 8;
  const jobMs = 2_000;
  const ideal = Math.ceil(steps / concurrency) * jobMs;
  const { duration, label } = FORTY_JOBS[jobs];
  const emulator = await startEmulatorProcess(["--duration", duration]);
  const dirs = [];
  const inFreshDir = (name) => {
    const dir = tempDir(name);
    dirs.push(dir);
    return dir;
  };
  try {
    const env = apiEnvironment(emulator.url);
    const spawnOf = {
      runflow: () => {
        const dir = inFreshDir("makespan-40");
        writeBatch(dir, { name: "forty", count: steps, concurrency, mediaBase: emulator.url });
        return timedSpawn([CLI, "apply", "forty.yaml", "--quiet"], { cwd: dir, env });
      },
      baseline: () => {
        const dir = inFreshDir("makespan-40-baseline");
        return timedSpawn([BASELINE, String(steps), String(concurrency), path.join(dir, "out")], {
          cwd: dir,
          env,
        });
      },
    };
    // One wave through the emulator first, untimed: its first requests (a process just started,
    // its code not yet optimised) would otherwise slow whichever goes first in round 1.
    log("makespan-40: one wave of the baseline to warm the emulator up …");
    check(
      "the warm-up",
      await timedSpawn(
        [BASELINE, String(concurrency), String(concurrency), path.join(inFreshDir("warm-up"), "out")],
        {
          env,
        },
      ),
    );
    const runs = await alternate({ emulator, spawnOf, rounds, log, label, steps, concurrency });

    const medianOf = (who, pick) => median(runs[who].map(pick));
    const runflowMs = medianOf("runflow", (run) => run.ms);
    const baselineMs = medianOf("baseline", (run) => run.ms);
    const each = (who) => runs[who].map((run) => (run.ms / 1000).toFixed(3)).join(", ");
    const polls = (who) => medianOf(who, (run) => run.polls).toFixed(2);
    if (jobs === "varied") {
      // Each run draws its own durations: each is measured against the ideal of its draws.
      const overIdeal = (who) => runs[who].map((run) => run.ms / run.parts.ideal);
      const ratioOf = (who) => median(overIdeal(who));
      const eachRatio = (who) =>
        overIdeal(who)
          .map((value) => value.toFixed(3))
          .join(", ");
      row(
        `whole process ÷ the ideal of its durations, ${steps} × ${label} at concurrency ${concurrency}, runflow, median of ${rounds}`,
        `${ratioOf("runflow").toFixed(3)} (${seconds(runflowMs)}; each ${eachRatio("runflow")})`,
        "below the baseline",
        ratioOf("runflow") < ratioOf("baseline"),
      );
      row(
        `whole process ÷ the ideal of its durations, ${steps} × ${label} at concurrency ${concurrency}, baseline, median of ${rounds}`,
        `${ratioOf("baseline").toFixed(3)} (${seconds(baselineMs)}; each ${eachRatio("baseline")})`,
        "",
        undefined,
      );
      row(`status+result requests per step (${steps} × ${label}), runflow`, polls("runflow"), "", undefined);
      row(
        `status+result requests per step (${steps} × ${label}), baseline`,
        polls("baseline"),
        "",
        undefined,
      );
      return;
    }
    const ratio = runflowMs / ideal;
    row(
      `whole process ÷ ideal, ${steps} × 2 s at concurrency ${concurrency}, runflow, median of ${rounds}`,
      `${ratio.toFixed(3)} (${seconds(runflowMs)} / ${ideal / 1000} s; each ${each("runflow")})`,
      "≤ 1.04, below the baseline",
      ratio <= 1.04 && runflowMs < baselineMs,
    );
    row(
      `whole process ÷ ideal, ${steps} × 2 s at concurrency ${concurrency}, baseline, median of ${rounds}`,
      `${(baselineMs / ideal).toFixed(3)} (${seconds(baselineMs)}; each ${each("baseline")})`,
      "",
      undefined,
    );
    const both = (name, format, pick) => {
      row(`${name}, runflow`, format(medianOf("runflow", pick)), "", undefined);
      row(`${name}, baseline`, format(medianOf("baseline", pick)), "", undefined);
    };
    const ms = (value) => `${Math.round(value)} ms`;
    both("spawn → first submission", seconds, (run) => run.parts.firstSubmit);
    both(
      `first submission → last job's end, beyond the ideal ${ideal / 1000} s`,
      ms,
      (run) => run.parts.lastEndAfterFirstSubmit - ideal,
    );
    both("per-wave gap: a job's end → its slot's next submission, median", ms, (run) =>
      median(run.parts.gaps),
    );
    both("per-wave gap, the largest", ms, (run) => Math.max(...run.parts.gaps));
    both("a job's end → its first status request, median", ms, (run) => median(run.parts.looks));
    both("last job's end → exit", ms, (run) => run.parts.lastEndToExit);
    both(
      `status+result requests per step (${steps} × 2 s)`,
      (value) => value.toFixed(2),
      (run) => run.polls,
    );
  } finally {
    await emulator.stop();
    for (const dir of dirs) removeDir(dir);
  }
}
