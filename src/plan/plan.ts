/**
 * The planner: a Workflow and what earlier runs left → the Plan. Pure (no I/O, no clock:
 * `now` is an argument), so `runflow plan` and `apply` see the very same decisions.
 */
import path from "node:path";
import { UsageError } from "../errors.js";
import { validateModelInput } from "../models/validate-input.js";
import { setOwn } from "../template/data.js";
import {
  asText,
  resolveKnown,
  resolveValue,
  type StepResultView,
  type TemplateContext,
} from "../template/resolve.js";
import { pathValueGuard } from "../template/path-values.js";
import type { Job, JobInstance, ModelStep, RunStep, Workflow } from "../workflow/types.js";
import { fingerprintModelStep } from "./fingerprint.js";
import type {
  Plan,
  PlanCounts,
  PlannedStep,
  PlanOptions,
  PriorState,
  ReusableStep,
  ReuseReference,
  StepDecision,
  UnfinishedRequest,
} from "./types.js";

const NOTHING_DEFERRED: string[] = [];

/** `--only JOB` / `--only JOB/STEP` → the steps to plan per job (with what they depend on); undefined: all. */
export function selectSteps(
  workflow: Workflow,
  only: readonly string[] | undefined,
): Map<string, Set<string>> | undefined {
  if (!only || only.length === 0) return undefined;
  const selected = new Map<string, Set<string>>();
  const jobIds = workflow.jobs.map((job) => `\`${job.id}\``).join(", ");
  for (const entry of only) {
    const [jobId = "", stepId, ...rest] = entry.split("/");
    const job = workflow.jobs.find((candidate) => candidate.id === jobId);
    if (!job || rest.length > 0 || stepId === "") {
      throw new UsageError(
        job
          ? `--only ${entry}: expected JOB or JOB/STEP`
          : `--only ${entry}: the workflow has no job \`${jobId}\``,
        { hint: `its jobs are ${jobIds}` },
      );
    }
    const chosen = selected.get(job.id) ?? new Set<string>();
    selected.set(job.id, chosen);
    if (stepId === undefined) {
      for (const step of job.steps) chosen.add(step.id);
      continue;
    }
    if (!job.steps.some((step) => step.id === stepId)) {
      throw new UsageError(`--only ${entry}: job \`${job.id}\` has no step \`${stepId}\``, {
        hint: `its steps are ${job.steps.map((step) => `\`${step.id}\``).join(", ")}`,
      });
    }
    // A step cannot run without what it reads: its dependencies come along (and may be reused).
    const pending = [stepId];
    while (pending.length > 0) {
      const id = pending.pop()!;
      if (chosen.has(id)) continue;
      chosen.add(id);
      pending.push(...(job.steps.find((step) => step.id === id)?.dependsOn ?? []));
    }
  }
  return selected;
}

/** What planning one job needs; `instance`, `context` and `outputsDir` move from instance to instance. */
interface JobPlanning {
  workflow: Workflow;
  prior: PriorState;
  options: PlanOptions;
  job: Job;
  instance: JobInstance;
  context: TemplateContext;
  outputsDir: string;
  /** Each model step's input fields, listed once per job instead of once per instance. */
  fields: Map<ModelStep, [string, unknown][]>;
}

function reusable(found: ReusableStep | undefined, planning: JobPlanning): ReusableStep | undefined {
  if (!found || planning.options.fresh) return undefined;
  // Remote output URLs expire (SPEC §5): an older success is not reused.
  return planning.options.now - found.finishedAt <= planning.workflow.cache.ttlMs ? found : undefined;
}

/** What becomes of a step an earlier request of which may still exist (none: it is submitted). */
export function unfinishedDecision(
  unfinished: UnfinishedRequest | undefined,
  resubmitUnknown: boolean,
): "submit" | "reattach" | "unknown" {
  if (!unfinished) return "submit";
  if (unfinished.kind === "reattach") return "reattach";
  return resubmitUnknown ? "submit" : "unknown";
}

function referenceTo(found: ReusableStep): ReuseReference {
  const reference: ReuseReference = {
    runId: found.runId,
    address: found.address,
    finishedAt: found.finishedAt,
  };
  if (found.requestId !== undefined) reference.requestId = found.requestId;
  return reference;
}

function resultOf(reused: ReusableStep): StepResultView {
  const result: StepResultView = {};
  if (reused.output !== undefined) result.output = reused.output;
  if (reused.files !== undefined) result.files = reused.files;
  if (reused.requestId !== undefined) result.request_id = reused.requestId;
  if (reused.stdout !== undefined) result.stdout = reused.stdout;
  return result;
}

function newPlannedStep(
  step: ModelStep | RunStep,
  planning: JobPlanning,
  decision: StepDecision,
  deferred: string[],
): PlannedStep {
  const prefix = `${planning.job.id}/${planning.instance.key}/`;
  // One literal with every key in the same order: 200,000 of these share one object shape.
  return {
    address: prefix + step.id,
    jobId: planning.job.id,
    instanceKey: planning.instance.key,
    stepId: step.id,
    kind: step.kind,
    dependsOn: step.dependsOn.map((id) => prefix + id),
    deferredFields: deferred.length > 0 ? deferred : NOTHING_DEFERRED,
    decision,
    retry: step.retry,
    timeoutMs: step.timeoutMs,
    outputsDir: planning.outputsDir,
  };
}

/**
 * The request body with the input's own strings: validateModelInput returns copies, and a
 * plan of 100,000 prompts should not hold each twice. Only defaults are taken from it.
 */
function bodyOf(input: Record<string, unknown>, validated: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(validated)) {
    const own = input[field];
    setOwn(body, field, typeof own === "string" && own === value ? own : value);
  }
  return body;
}

function planModelStep(step: ModelStep, planning: JobPlanning): PlannedStep {
  let fields = planning.fields.get(step);
  if (!fields) {
    fields = Object.entries(step.input);
    planning.fields.set(step, fields);
  }
  const input: Record<string, unknown> = {};
  const deferred: string[] = [];
  for (const [field, value] of fields) {
    const resolved = resolveKnown(value, planning.context);
    setOwn(input, field, resolved.value);
    if (resolved.pending) deferred.push(field);
  }
  if (deferred.length > 0) {
    const planned = newPlannedStep(step, planning, "deferred", deferred);
    planned.model = step.model;
    planned.input = input;
    return planned;
  }

  const { value, issues } = validateModelInput(step.entry, input);
  const body = bodyOf(input, value);
  const fingerprint = fingerprintModelStep(step.model, body);
  const reuse = reusable(planning.prior.findSucceeded(planning.workflow.name, fingerprint), planning);
  const address = `${planning.job.id}/${planning.instance.key}/${step.id}`;
  const unfinished = reuse
    ? undefined
    : planning.prior.unfinished?.(planning.workflow.name, fingerprint, address);
  const planned = newPlannedStep(
    step,
    planning,
    reuse ? "reuse" : unfinishedDecision(unfinished, step.retry.resubmitUnknown),
    NOTHING_DEFERRED,
  );
  if (unfinished && planned.decision !== "submit") planned.unfinished = unfinished;
  planned.model = step.model;
  planned.body = body;
  planned.fingerprint = fingerprint;
  if (issues.length > 0) planned.problems = issues.map((issue) => issue.message);
  if (reuse) {
    planned.reuse = referenceTo(reuse);
    // Steps after it can now be resolved, and perhaps reused too.
    planning.context.steps[step.id] = resultOf(reuse);
  }
  return planned;
}

function planRunStep(step: RunStep, planning: JobPlanning): PlannedStep {
  const deferred: string[] = [];
  const known = (part: string, value: unknown): unknown => {
    const isPath = part === "cwd" || part === "outputs";
    const resolved = resolveKnown(value, planning.context, isPath ? pathValueGuard : undefined);
    if (resolved.pending) deferred.push(part);
    return resolved.value;
  };
  const argv = (known("run", step.run) as unknown[]).map(asText);
  const cwdText = asText(known("cwd", step.cwd ?? "."));
  const cwd = deferred.includes("cwd") ? cwdText : path.resolve(planning.outputsDir, cwdText);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(known("env", step.env) as Record<string, unknown>)) {
    setOwn(env, name, asText(value));
  }
  const outputNames: Record<string, string> = {};
  const outputs = known("outputs", step.outputs) as Record<string, unknown>;
  const pathsKnown = !deferred.includes("cwd") && !deferred.includes("outputs");
  for (const [name, file] of Object.entries(outputs)) {
    setOwn(outputNames, name, pathsKnown ? path.resolve(cwd, asText(file)) : asText(file));
  }
  const planned = newPlannedStep(step, planning, "run", deferred);
  planned.argv = argv;
  planned.cwd = cwd;
  planned.env = env;
  planned.outputNames = outputNames;
  return planned;
}

export function emptyCounts(): PlanCounts {
  return { total: 0, reuse: 0, submit: 0, reattach: 0, unknown: 0, deferred: 0, run: 0 };
}

export function countDecisions(steps: readonly PlannedStep[]): PlanCounts {
  const counts = emptyCounts();
  counts.total = steps.length;
  for (const step of steps) counts[step.decision]++;
  return counts;
}

/** `YYYY-MM-DD` (UTC) of `now`: what `${{ run.date }}` reads. */
export function runDate(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** One job instance's planned steps, and where the first of them stands in the plan's order. */
export interface PlannedInstance {
  position: number;
  steps: PlannedStep[];
}

/** The jobs a run of `workflow` has, in order, each with the steps `only` selects (all without it). */
function selectedJobs(workflow: Workflow, only: readonly string[] | undefined): SelectedJob[] {
  const selection = selectSteps(workflow, only);
  const jobs: SelectedJob[] = [];
  for (const job of workflow.jobs) {
    const chosen = selection ? selection.get(job.id) : undefined;
    if (selection && !chosen) continue;
    const steps = chosen ? job.steps.filter((step) => chosen.has(step.id)) : job.steps;
    if (steps.length > 0 && job.instances.length > 0) jobs.push({ job, steps });
  }
  return jobs;
}

interface SelectedJob {
  job: Job;
  steps: (ModelStep | RunStep)[];
}

/** The steps a run of `workflow` has, and the jobs they belong to: known before planning. */
export function planTotals(workflow: Workflow, only?: readonly string[]): { steps: number; jobs: number } {
  let steps = 0;
  let jobs = 0;
  for (const { job, steps: perInstance } of selectedJobs(workflow, only)) {
    steps += perInstance.length * job.instances.length;
    jobs += job.instances.length;
  }
  return { steps, jobs };
}

/** Model steps per model a run of `workflow` has (the live view's ETA weighs each model by its duration). */
export function planModelCounts(workflow: Workflow, only?: readonly string[]): Record<string, number> {
  const models: Record<string, number> = {};
  for (const { job, steps } of selectedJobs(workflow, only)) {
    for (const step of steps) {
      if (step.kind === "model") models[step.model] = (models[step.model] ?? 0) + job.instances.length;
    }
  }
  return models;
}

/**
 * Plans a run of `workflow` one job instance at a time, each with its resolved inputs,
 * request bodies, fingerprints and decisions. In plan order (jobs, their instances, their
 * steps), except that instances `options.later` names (`JOB/KEY`) come after all the others:
 * a resumed run plans first what an earlier run did not finish, and starts on it sooner.
 */
export function* planInstances(
  workflow: Workflow,
  prior: PriorState,
  options: PlanOptions & { later?: ((instance: string) => boolean) | undefined },
): Generator<PlannedInstance> {
  const run = { id: options.runId, date: runDate(options.now) };
  const jobs: { planning: JobPlanning; steps: (ModelStep | RunStep)[]; position: number }[] = [];
  let position = 0;
  for (const { job, steps: jobSteps } of selectedJobs(workflow, options.only)) {
    const context: TemplateContext = {
      item: {},
      vars: workflow.vars,
      workflow: { name: workflow.name },
      job: { id: job.id, key: "" },
      run,
      env: workflow.env,
      steps: {},
    };
    jobs.push({
      planning: {
        workflow,
        prior,
        options,
        job,
        instance: job.instances[0]!,
        context,
        outputsDir: "",
        fields: new Map(),
      },
      steps: jobSteps,
      position,
    });
    position += jobSteps.length * job.instances.length;
  }
  const later = options.later;
  for (const pass of later ? [false, true] : [false]) {
    for (const { planning, steps: jobSteps, position: jobPosition } of jobs) {
      const { job, context } = planning;
      for (let index = 0; index < job.instances.length; index++) {
        const instance = job.instances[index]!;
        if (later && later(`${job.id}/${instance.key}`) !== pass) continue;
        planning.instance = instance;
        context.item = instance.item;
        context.job = { id: job.id, key: instance.key };
        context.steps = {};
        planning.outputsDir = path.resolve(
          workflow.dir,
          asText(resolveValue(workflow.outputs, context, pathValueGuard)),
        );
        const steps = jobSteps.map((step) =>
          step.kind === "model" ? planModelStep(step, planning) : planRunStep(step, planning),
        );
        yield { position: jobPosition + index * jobSteps.length, steps };
      }
    }
  }
}

/** What a plan says of its workflow. */
export function planWorkflow(workflow: Workflow): Plan["workflow"] {
  return {
    name: workflow.name,
    file: workflow.file,
    concurrency: workflow.concurrency,
    limits: workflow.limits,
    poll: workflow.defaults.poll,
  };
}

/**
 * Plans a run of `workflow`: every step of every instance (or those `only` selects, with
 * their dependencies), in dependency order, with its resolved input, request body,
 * fingerprint and decision. Reuse needs `prior` (pass emptyPriorState for none).
 */
export function planRun(workflow: Workflow, prior: PriorState, options: PlanOptions): Plan {
  const steps: PlannedStep[] = [];
  for (const instance of planInstances(workflow, prior, options)) {
    for (const step of instance.steps) steps.push(step);
  }
  return {
    workflow: planWorkflow(workflow),
    runId: options.runId,
    createdAt: options.now,
    ...(options.apiOrigin === undefined ? {} : { apiOrigin: options.apiOrigin }),
    steps,
    counts: countDecisions(steps),
  };
}
