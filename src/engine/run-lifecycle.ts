/**
 * A run's record at its two ends: created and announced first, its steps recorded (all
 * pending) as they are planned, each before it can start, its plan's own record once the
 * last is in; finished with its outcome. Each written first, then announced.
 */
import os from "node:os";
import path from "node:path";
import { emptyCounts, type PlannedInstance } from "../plan/plan.js";
import type { Plan, PlanCounts, PlannedStep } from "../plan/types.js";
import type { StateStore } from "../store/port.js";
import type { NewStep, RunKind } from "../store/types.js";
import type { Clock } from "../util/clock.js";
import type { RunEventSink } from "./events.js";
import { costToJson, usdOf } from "../cost/money.js";
import type { ExecutionResult } from "./executor.js";
import { PlanEncoder } from "./stored-plan.js";

const INSERT_SLICE = 5_000;

export interface RunMeta {
  kind: RunKind;
  /** The workflow file as the user named it. */
  file: string;
  parentRunId?: string | undefined;
  /** The effective options (never the token). */
  options: unknown;
  /** Requests in flight at once, as this run uses it. */
  concurrency: number;
  /** The API the run is made at (api/origin.ts): what it may reuse and re-attach to. */
  apiOrigin: string;
}

/** What the store keeps as a step's input before it runs: the body, the input with its templates, or the command. */
function storedInput(step: PlannedStep): unknown {
  if (step.kind === "run") return { argv: step.argv, cwd: step.cwd, env: step.env };
  return step.body ?? step.input;
}

function newStepOf(step: PlannedStep, position: number): NewStep {
  return {
    position,
    address: step.address,
    jobId: step.jobId,
    instanceKey: step.instanceKey,
    stepId: step.stepId,
    kind: step.kind,
    model: step.model,
    state: "pending",
    fingerprint: step.fingerprint,
    input: storedInput(step),
  };
}

/** A plan as a run receives it: what it says of itself, then its instances as they are planned. */
export interface PlanStream {
  runId: string;
  createdAt: number;
  workflow: Plan["workflow"];
  /** Steps and jobs in all (and model steps per model), known before the first is planned. */
  totals: { steps: number; jobs: number; models?: Record<string, number> | undefined };
  instances: Iterable<PlannedInstance>;
}

/** The budget an apply recorded in its options (`maxCostMicros`), as run_started tells it. */
function budgetOf(options: unknown): { maxCostUsd?: number } {
  const micros = (options as { maxCostMicros?: unknown } | undefined)?.maxCostMicros;
  return typeof micros === "number" ? { maxCostUsd: usdOf(micros) } : {};
}

/** A whole plan as a stream: its instances, in order. */
export function streamOf(plan: Plan): PlanStream {
  const jobs = new Set<string>();
  const models: Record<string, number> = {};
  for (const step of plan.steps) {
    jobs.add(`${step.jobId}/${step.instanceKey}`);
    if (step.kind === "model" && step.model !== undefined) models[step.model] = (models[step.model] ?? 0) + 1;
  }
  return {
    runId: plan.runId,
    createdAt: plan.createdAt,
    workflow: plan.workflow,
    totals: { steps: plan.steps.length, jobs: jobs.size, models },
    instances: instancesOf(plan.steps),
  };
}

/** A plan's steps by job instance (each instance's steps are contiguous), with their places. */
function* instancesOf(steps: readonly PlannedStep[]): Generator<PlannedInstance> {
  let start = 0;
  for (let index = 1; index <= steps.length; index++) {
    const first = steps[start]!;
    const next = steps[index];
    if (next && next.jobId === first.jobId && next.instanceKey === first.instanceKey) continue;
    yield { position: start, steps: steps.slice(start, index) };
    start = index;
  }
}

/**
 * Records a run as its plan is made: created and announced first, then each slice of steps
 * (all pending, at their place in the plan) with its part of the stored plan, and the
 * stored plan's own record once every step is in. With `openEarly` (a shared state, whose
 * workers open the run from its stored plan), the plan's record is also written, partial,
 * before the first part and before any part that brings a step of a new shape: a worker can
 * open the run as soon as its first steps are queued, not once the whole plan is recorded.
 */
export class RunRecorder {
  readonly startedAt: number;
  readonly #deps: { store: StateStore; events: RunEventSink; clock: Clock };
  readonly #stream: Omit<PlanStream, "instances">;
  readonly #encoder: PlanEncoder;
  readonly #meta: RunMeta;
  readonly #counts: PlanCounts = emptyCounts();
  readonly #openEarly: boolean;
  #parts = 0;
  /** How many shapes the plan's partial record written last holds. */
  #shapesWritten = 0;

  constructor(
    deps: { store: StateStore; events: RunEventSink; clock: Clock },
    stream: PlanStream,
    meta: RunMeta,
    options: { openEarly?: boolean } = {},
  ) {
    this.#openEarly = options.openEarly ?? false;
    this.#deps = deps;
    this.#stream = stream;
    // Outputs folders are stored relative to the workflow's folder: their common folder is
    // known only once every step is planned.
    this.#encoder = new PlanEncoder(path.dirname(stream.workflow.file));
    this.#meta = meta;
    this.startedAt = deps.clock.now();
  }

  /** Records the run (without its steps yet), then announces it. */
  async start(): Promise<void> {
    const { store, events } = this.#deps;
    const stream = this.#stream;
    const meta = this.#meta;
    await store.runs.create({
      id: stream.runId,
      workflowName: stream.workflow.name,
      workflowFile: meta.file,
      kind: meta.kind,
      parentRunId: meta.parentRunId,
      // Not a plan retry can read until finish() writes it.
      plan: null,
      options: meta.options,
      startedAt: this.startedAt,
      pid: process.pid,
      hostname: os.hostname(),
      apiOrigin: meta.apiOrigin,
    });
    events.emit({
      event: "run_started",
      at: this.startedAt,
      runId: stream.runId,
      workflow: stream.workflow.name,
      file: meta.file,
      kind: meta.kind,
      steps: stream.totals.steps,
      jobs: stream.totals.jobs,
      concurrency: meta.concurrency,
      ...(Object.keys(stream.workflow.limits).length > 0 ? { limits: stream.workflow.limits } : {}),
      ...(stream.totals.models && Object.keys(stream.totals.models).length > 0
        ? { models: stream.totals.models }
        : {}),
      ...budgetOf(meta.options),
    });
  }

  /** Records these instances' steps: their rows, then their part of the stored plan. */
  async record(instances: readonly PlannedInstance[]): Promise<void> {
    const rows: NewStep[] = [];
    const stored: ReturnType<PlanEncoder["step"]>[] = [];
    for (const instance of instances) {
      instance.steps.forEach((step, offset) => {
        rows.push(newStepOf(step, instance.position + offset));
        stored.push(this.#encoder.step(step));
        this.#counts.total++;
        this.#counts[step.decision]++;
      });
    }
    if (rows.length === 0) return;
    const { store } = this.#deps;
    const { runId, createdAt, workflow } = this.#stream;
    // Issued first, so written (committed) no later than the part: a worker that reads the
    // parts, then the record, knows every shape they use (stored-plan.ts readStoredPlanSoFar).
    const shapes = this.#encoder.shapes.length;
    const record =
      this.#openEarly && shapes > this.#shapesWritten
        ? store.runs.setPlan(runId, this.#encoder.soFar({ runId, createdAt, workflow, counts: this.#counts }))
        : undefined;
    if (record) this.#shapesWritten = shapes;
    await Promise.all([record, store.runs.addPlanPart(runId, this.#parts++, rows, stored, this.startedAt)]);
  }

  /** Writes the stored plan's own record: from now on `retry` can work from this run. */
  async finish(): Promise<PlanCounts> {
    const { runId, createdAt, workflow } = this.#stream;
    await this.#deps.store.runs.setPlan(
      runId,
      this.#encoder.whole({ runId, createdAt, workflow, counts: this.#counts }, []),
    );
    return { ...this.#counts };
  }
}

/** Records the run with its whole plan and every step (all pending), then announces it. */
export async function beginRun(
  deps: { store: StateStore; events: RunEventSink; clock: Clock },
  plan: Plan,
  meta: RunMeta,
): Promise<number> {
  const recorder = new RunRecorder(deps, streamOf(plan), meta);
  await recorder.start();
  // In slices, so a 100,000-step plan never holds all its rows (nor its stored steps) at once.
  for (let from = 0; from < plan.steps.length; from += INSERT_SLICE) {
    const steps = plan.steps.slice(from, from + INSERT_SLICE);
    await recorder.record([{ position: from, steps }]);
  }
  await recorder.finish();
  return recorder.startedAt;
}

/**
 * Records how the run ended, then announces it. Earlier runs it finished the work of (they
 * were interrupted or died) are marked so, and it says so.
 */
export async function endRun(
  deps: { store: StateStore; events: RunEventSink; clock: Clock },
  runId: string,
  startedAt: number,
  result: Pick<ExecutionResult, "status" | "exitCode" | "counts" | "budget">,
): Promise<void> {
  const closed = await deps.store.runs.closeFinishedBy(runId);
  if (closed.length > 0) {
    deps.events.emit({
      event: "notice",
      at: deps.clock.now(),
      runId,
      level: "info",
      message: `finished what ${closed.length === 1 ? "run" : "runs"} ${closed.join(", ")} left unfinished`,
    });
  }
  const finishedAt = deps.clock.now();
  await deps.store.runs.finish(runId, {
    status: result.status,
    exitCode: result.exitCode,
    finishedAt,
    counts: result.counts,
  });
  deps.events.emit({
    event: "run_finished",
    at: finishedAt,
    runId,
    status: result.status,
    exitCode: result.exitCode,
    elapsedMs: finishedAt - startedAt,
    counts: result.counts,
    cost: costToJson(await deps.store.history.runCost(runId)),
    ...(result.budget ? { budget: result.budget } : {}),
  });
}
