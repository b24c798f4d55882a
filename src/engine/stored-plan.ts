/**
 * The plan as it is stored with its run (for `retry`), normalized: what the steps of one job
 * share is written once, each step adds only what is its own, and request bodies are not
 * repeated — the steps table holds them. A 100,000-step plan is a few MB instead of tens,
 * and storing it costs no memory spike.
 */
import path from "node:path";
import type { Plan, PlannedStep, ReuseReference, StepDecision } from "../plan/types.js";
import type { StateStore } from "../store/port.js";
import type { StepRecord } from "../store/types.js";
import { commonFolder } from "./paths.js";

export const STORED_PLAN_FORMAT = "runflow-plan/1";

/** What every instance of one step of one job has in common. */
interface StepShape {
  jobId: string;
  stepId: string;
  kind: "model" | "run";
  model?: string;
  /** Step ids (within the instance) this one waits for. */
  dependsOn: string[];
  deferredFields: string[];
  retry: PlannedStep["retry"];
  timeoutMs: number;
}

/**
 * A step's own part: `[shape, instance key, outputs folder (relative to outputsRoot), decision, rest]`.
 * Stored in the order the steps were planned; decodePlan puts them back in plan order.
 */
type StoredStep = [number, string, string, StepDecision, StoredRest?];

/** The rest of a step that is not in its shape nor in the steps table. */
interface StoredRest {
  /** Deferred model steps: the input with its templates (the steps table holds what it resolved to). */
  input?: Record<string, unknown>;
  argv?: string[];
  cwd?: string;
  env?: Record<string, string>;
  outputNames?: Record<string, string>;
  problems?: string[];
  /** A step planned as reused: which earlier step it took over (its result is in that step's record). */
  reuse?: ReuseReference;
}

export interface StoredPlan {
  format: typeof STORED_PLAN_FORMAT;
  workflow: Plan["workflow"];
  runId: string;
  createdAt: number;
  counts: Plan["counts"];
  outputsRoot: string;
  shapes: StepShape[];
  steps: StoredStep[];
  /**
   * The plan's record written before the plan is whole (RunRecorder on a shared state): the
   * shapes of the parts recorded so far, so a cluster's workers can open the run while the
   * rest is planned. `retry` never works from it (its apply may have died half-way).
   */
  partial?: true;
}

function shapeKey(step: PlannedStep): string {
  return JSON.stringify([
    step.jobId,
    step.stepId,
    step.kind,
    step.model,
    step.deferredFields,
    step.retry,
    step.timeoutMs,
  ]);
}

function defaultOutputsRoot(plan: Plan): string {
  return commonFolder(new Set(plan.steps.map((step) => step.outputsDir))) ?? path.dirname(plan.workflow.file);
}

/** Encodes steps one at a time, collecting the shapes they share; `whole` writes the rest of the plan around them. */
export class PlanEncoder {
  readonly shapes: StepShape[] = [];
  readonly #shapeIndex = new Map<string, number>();

  constructor(readonly outputsRoot: string) {}

  #shapeOf(step: PlannedStep): number {
    const key = shapeKey(step);
    let index = this.#shapeIndex.get(key);
    if (index === undefined) {
      const prefix = `${step.jobId}/${step.instanceKey}/`;
      const shape: StepShape = {
        jobId: step.jobId,
        stepId: step.stepId,
        kind: step.kind,
        dependsOn: step.dependsOn.map((address) => address.slice(prefix.length)),
        deferredFields: step.deferredFields,
        retry: step.retry,
        timeoutMs: step.timeoutMs,
      };
      if (step.model !== undefined) shape.model = step.model;
      index = this.shapes.push(shape) - 1;
      this.#shapeIndex.set(key, index);
    }
    return index;
  }

  step(step: PlannedStep): StoredStep {
    const rest: StoredRest = {};
    if (step.decision === "deferred" && step.input) rest.input = step.input;
    if (step.kind === "run") {
      rest.argv = step.argv;
      rest.cwd = step.cwd;
      rest.env = step.env;
      rest.outputNames = step.outputNames;
    }
    if (step.problems) rest.problems = step.problems;
    if (step.reuse) rest.reuse = step.reuse;
    const stored: StoredStep = [
      this.#shapeOf(step),
      step.instanceKey,
      path.relative(this.outputsRoot, step.outputsDir),
      step.decision,
    ];
    if (Object.keys(rest).length > 0) stored.push(rest);
    return stored;
  }

  /**
   * The plan's record before the plan is whole: what `whole` writes, with the shapes of the
   * steps encoded so far, marked partial.
   */
  soFar(plan: Omit<Plan, "steps">): StoredPlan {
    return { ...this.whole(plan, []), shapes: [...this.shapes], partial: true };
  }

  whole(plan: Omit<Plan, "steps">, steps: StoredStep[]): StoredPlan {
    return {
      format: STORED_PLAN_FORMAT,
      workflow: plan.workflow,
      runId: plan.runId,
      createdAt: plan.createdAt,
      counts: plan.counts,
      outputsRoot: this.outputsRoot,
      shapes: this.shapes,
      steps,
    };
  }
}

/** `outputsRoot`: the common folder of the steps' outputs, when the caller has it already. */
export function encodePlan(plan: Plan, outputsRoot: string = defaultOutputsRoot(plan)): StoredPlan {
  const encoder = new PlanEncoder(outputsRoot);
  return encoder.whole(
    plan,
    plan.steps.map((step) => encoder.step(step)),
  );
}

/**
 * A run's stored plan with every part's steps after its own, or undefined if it has none
 * runflow can read, or only a partial one (its apply is planning it, or died doing so).
 */
export async function readStoredPlan(store: StateStore, runId: string): Promise<StoredPlan | undefined> {
  const read = await readStoredPlanSoFar(store, runId);
  return read?.plan.partial ? undefined : read?.plan;
}

/**
 * A run's stored plan as far as it is recorded (a partial one too): its own record with the
 * steps of its parts from `fromPart` on (the record's own steps only from the first), and how
 * many parts there are now. Undefined while the run has no plan record.
 */
export async function readStoredPlanSoFar(
  store: StateStore,
  runId: string,
  fromPart = 0,
): Promise<{ plan: StoredPlan; parts: number } | undefined> {
  // The parts before the record: a part is written after the record that names its shapes
  // (RunRecorder.record), so a record read after them knows the shape of every step they hold.
  const parts = (await store.runs.planParts(runId, fromPart)) as StoredStep[][];
  const saved = await store.runs.plan(runId);
  if (!isStoredPlan(saved)) return undefined;
  const own = fromPart === 0 ? saved.steps : [];
  return { plan: { ...saved, steps: own.concat(...parts) }, parts: fromPart + parts.length };
}

export function isStoredPlan(value: unknown): value is StoredPlan {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { format?: unknown }).format === STORED_PLAN_FORMAT
  );
}

/**
 * The Plan again, from its stored form and the run's step records (which hold each model
 * step's request body and fingerprint as planned). A reused step's `reuse` is the reference
 * only (run, address, when): its result is read from that step's record when needed.
 */
export function decodePlan(stored: StoredPlan, records: ReadonlyMap<string, StepRecord>): Plan {
  const planned: PlannedStep[] = stored.steps.map(
    ([shapeIndex, instanceKey, outputsDir, decision, rest = {}]) => {
      const shape = stored.shapes[shapeIndex]!;
      const prefix = `${shape.jobId}/${instanceKey}/`;
      const address = prefix + shape.stepId;
      const step: PlannedStep = {
        address,
        jobId: shape.jobId,
        instanceKey,
        stepId: shape.stepId,
        kind: shape.kind,
        dependsOn: shape.dependsOn.map((id) => prefix + id),
        deferredFields: shape.deferredFields,
        decision,
        retry: shape.retry,
        timeoutMs: shape.timeoutMs,
        outputsDir: path.resolve(stored.outputsRoot, outputsDir),
      };
      if (shape.model !== undefined) step.model = shape.model;
      const record = records.get(address);
      if (shape.kind === "model" && decision !== "deferred" && record) {
        step.body = record.input as Record<string, unknown>;
        if (record.fingerprint !== undefined) step.fingerprint = record.fingerprint;
      }
      if (rest.input) step.input = rest.input;
      if (rest.argv) step.argv = rest.argv;
      if (rest.cwd !== undefined) step.cwd = rest.cwd;
      if (rest.env) step.env = rest.env;
      if (rest.outputNames) step.outputNames = rest.outputNames;
      if (rest.problems) step.problems = rest.problems;
      if (rest.reuse) step.reuse = rest.reuse;
      return step;
    },
  );
  // Parts are stored in the order the steps were planned; the records are in plan order.
  const place = new Map<string, number>();
  for (const address of records.keys()) place.set(address, place.size);
  const steps = planned
    .map((step, index) => ({ step, at: place.get(step.address) ?? place.size + index }))
    .sort((a, b) => a.at - b.at)
    .map(({ step }) => step);
  return {
    workflow: stored.workflow,
    runId: stored.runId,
    createdAt: stored.createdAt,
    steps,
    counts: stored.counts,
  };
}
