/**
 * A run's record at its two ends: created with its plan and every step before anything is
 * submitted, finished with its outcome. Each written first, then announced.
 */
import os from "node:os";
import type { Plan, PlannedStep } from "../plan/types.js";
import type { NewStep, RunKind, StateStore } from "../store/types.js";
import type { Clock } from "../util/clock.js";
import type { EventBus } from "./events.js";
import type { ExecutionResult } from "./executor.js";
import { encodePlanInParts } from "./stored-plan.js";

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
  /** The common folder of the steps' outputs, when the caller has computed it. */
  outputsRoot?: string | undefined;
}

/** What the store keeps as a step's input before it runs: the body, the input with its templates, or the command. */
function storedInput(step: PlannedStep): unknown {
  if (step.kind === "run") return { argv: step.argv, cwd: step.cwd, env: step.env };
  return step.body ?? step.input;
}

function newStepOf(step: PlannedStep): NewStep {
  return {
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

/** Records the run with its plan and steps (all pending), then announces it. */
export function beginRun(
  deps: { store: StateStore; events: EventBus; clock: Clock },
  plan: Plan,
  meta: RunMeta,
): number {
  const startedAt = deps.clock.now();
  const stored = encodePlanInParts(plan, INSERT_SLICE, meta.outputsRoot);
  deps.store.createRun({
    id: plan.runId,
    workflowName: plan.workflow.name,
    workflowFile: meta.file,
    kind: meta.kind,
    parentRunId: meta.parentRunId,
    plan: stored.plan,
    options: meta.options,
    startedAt,
    pid: process.pid,
    hostname: os.hostname(),
  });
  // In slices, so a 100,000-step plan never holds all its rows (nor its stored steps) at once.
  let part = 0;
  for (const steps of stored.parts) {
    const from = part * INSERT_SLICE;
    deps.store.insertSteps(plan.runId, plan.steps.slice(from, from + INSERT_SLICE).map(newStepOf), startedAt);
    deps.store.addRunPlanPart(plan.runId, part++, steps);
  }
  const jobs = new Set<string>();
  for (const step of plan.steps) jobs.add(`${step.jobId}/${step.instanceKey}`);
  deps.events.emit({
    event: "run_started",
    at: startedAt,
    runId: plan.runId,
    workflow: plan.workflow.name,
    file: meta.file,
    kind: meta.kind,
    steps: plan.steps.length,
    jobs: jobs.size,
    concurrency: meta.concurrency,
  });
  return startedAt;
}

/** Records how the run ended, then announces it. */
export function endRun(
  deps: { store: StateStore; events: EventBus; clock: Clock },
  runId: string,
  startedAt: number,
  result: Pick<ExecutionResult, "status" | "exitCode" | "counts">,
): void {
  const finishedAt = deps.clock.now();
  deps.store.finishRun(runId, {
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
  });
}
