/**
 * Stage (c): what was written → the resolved shapes: durations in milliseconds, every
 * default applied, steps in dependency order. Runs on parts that passed the schema; where
 * a part did not, the built-in default stands in (the workflow is refused anyway) so later
 * checks of other parts still run.
 */
import path from "node:path";
import type { ModelRegistry } from "../models/registry.js";
import { deferredFields, referencedSteps } from "../template/resolve.js";
import { parseDuration } from "../util/duration.js";
import { microsFromUsd } from "../cost/money.js";
import type {
  BudgetFile,
  DurationText,
  JobFile,
  PollPolicy,
  RetryFile,
  RetryPolicy,
  RunStepFile,
  Step,
  StepFile,
  Workflow,
  WorkflowFile,
} from "./types.js";
import { isRecord } from "./view.js";

/** The defaults SPEC §4 and the schema state; the schema's `default`s say the same. */
export const BUILTIN_DEFAULTS = {
  concurrency: 8,
  retry: {
    attempts: 3,
    backoffMs: 10_000,
    maxBackoffMs: 300_000,
    resubmitUnknown: false,
  } satisfies RetryPolicy,
  timeoutMs: 30 * 60_000,
  cacheTtlMs: 6 * 86_400_000,
  outputs: "outputs/${{ workflow.name }}/${{ job.key }}",
} as const;

/**
 * A written duration, when it has a duration's type. The schema refuses anything else, but
 * normalization also runs on a document that failed it (`timeout: [1, 2]`): such a value
 * is already reported, and the default stands in.
 */
function asDurationText(value: unknown): DurationText | undefined {
  return typeof value === "string" || typeof value === "number" ? value : undefined;
}

function durationMs(value: unknown, fallback: number): number {
  const written = asDurationText(value);
  if (written === undefined) return fallback;
  return parseDuration(written) ?? fallback;
}

function optionalDurationMs(value: unknown): number | undefined {
  const written = asDurationText(value);
  return written === undefined ? undefined : parseDuration(written);
}

/** `value` when it is a map as the schema wants, else an empty one (its problem is already reported). */
function mapOr<T extends object>(value: T | undefined): Partial<T> {
  return isRecord(value) ? value : {};
}

function isPositiveInteger(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1;
}

export function normalizeRetry(retry: RetryFile | undefined, base: RetryPolicy): RetryPolicy {
  const written = mapOr(retry);
  return {
    attempts: isPositiveInteger(written.attempts) ? written.attempts : base.attempts,
    backoffMs: durationMs(written.backoff, base.backoffMs),
    maxBackoffMs: durationMs(written.max_backoff, base.maxBackoffMs),
    resubmitUnknown:
      typeof written.resubmit_unknown === "boolean" ? written.resubmit_unknown : base.resubmitUnknown,
  };
}

export interface TopLevelSettings {
  name: string;
  concurrency: number;
  limits: Record<string, number>;
  retry: RetryPolicy;
  timeoutMs: number;
  poll: PollPolicy;
  outputs: string;
  cacheTtlMs: number;
  budget: Workflow["budget"];
}

/** The top-level settings with defaults; `fileStem` names a workflow without `name`. */
export function normalizeTopLevel(file: WorkflowFile, fileStem: string): TopLevelSettings {
  const defaults = mapOr(file.defaults);
  const poll = mapOr(defaults.poll);
  return {
    name: typeof file.name === "string" ? file.name : fileStem,
    concurrency: isPositiveInteger(file.concurrency) ? file.concurrency : BUILTIN_DEFAULTS.concurrency,
    limits: isRecord(file.limits) ? { ...file.limits } : {},
    retry: normalizeRetry(defaults.retry, BUILTIN_DEFAULTS.retry),
    timeoutMs: durationMs(defaults.timeout, BUILTIN_DEFAULTS.timeoutMs),
    poll: {
      intervalMs: optionalDurationMs(poll.interval),
      maxIntervalMs: optionalDurationMs(poll.max_interval),
    },
    outputs: typeof file.outputs === "string" ? file.outputs : BUILTIN_DEFAULTS.outputs,
    cacheTtlMs: durationMs(mapOr(file.cache).ttl, BUILTIN_DEFAULTS.cacheTtlMs),
    budget: normalizeBudget(file.budget),
  };
}

/** `budget:` as micro-dollars (the schema checked its shape). */
function normalizeBudget(file: BudgetFile | undefined): Workflow["budget"] {
  const budget = mapOr(file) as BudgetFile;
  const assume: Workflow["budget"]["assume"] = {};
  for (const [model, what] of Object.entries(mapOr(budget.assume))) {
    const given: { seconds?: unknown; usd?: unknown } = isRecord(what) ? what : {};
    assume[model] = {
      seconds: typeof given.seconds === "number" ? given.seconds : undefined,
      micros: microsFromUsd(given.usd),
    };
  }
  return { maxMicros: microsFromUsd(budget.max_cost), assume };
}

function isRunStep(step: StepFile): step is RunStepFile {
  return "run" in step;
}

/**
 * The steps of a job that passed the schema, with dependencies and policies resolved, in
 * dependency order. Unknown models and references were reported by the rules: a step whose
 * model has no schema is left out (the workflow is refused anyway).
 */
export function normalizeSteps(
  job: JobFile,
  settings: Pick<TopLevelSettings, "retry" | "timeoutMs">,
  registry: ModelRegistry,
): Step[] {
  const written = job.steps ?? [];
  const ids = new Set(written.map((step) => step.id ?? ""));
  const steps: Step[] = [];
  for (const step of written) {
    const needs = [...(step.needs ?? [])];
    const reads = isRunStep(step)
      ? [step.run, step.cwd, step.env, step.outputs].flatMap((value) => [...referencedSteps(value)])
      : [...referencedSteps(step.input)];
    const common = {
      id: step.id ?? "",
      name: step.name,
      description: step.description,
      needs,
      dependsOn: [...new Set([...needs, ...reads])].filter((id) => ids.has(id)),
      retry: normalizeRetry(step.retry, settings.retry),
      timeoutMs: durationMs(step.timeout, settings.timeoutMs),
    };
    if (isRunStep(step)) {
      steps.push({
        ...common,
        kind: "run",
        run: (step.run ?? []).map(String),
        cwd: step.cwd,
        env: Object.fromEntries(Object.entries(step.env ?? {}).map(([name, value]) => [name, String(value)])),
        outputs: { ...(step.outputs ?? {}) },
      });
    } else {
      const entry = registry.get(step.model ?? "");
      if (!entry) continue;
      const input = step.input ?? {};
      steps.push({
        ...common,
        kind: "model",
        model: entry.model_id,
        entry,
        input,
        deferredFields: deferredFields(input),
      });
    }
  }
  return topologicalOrder(steps);
}

/**
 * Steps ordered so each comes after those it depends on; among steps that are ready at the
 * same time, declared order wins. Steps on a cycle (refused by the rules) keep their place at the end.
 */
export function topologicalOrder<T extends { id: string; dependsOn: readonly string[] }>(
  steps: readonly T[],
): T[] {
  const placed = new Set<string>();
  const ordered: T[] = [];
  let remaining = [...steps];
  while (remaining.length > 0) {
    const ready = remaining.find((step) => step.dependsOn.every((id) => placed.has(id)));
    if (!ready) {
      ordered.push(...remaining);
      break;
    }
    ordered.push(ready);
    placed.add(ready.id);
    remaining = remaining.filter((step) => step !== ready);
  }
  return ordered;
}

/** The file name without its extension: the default workflow name. */
export function fileStem(file: string): string {
  return path.basename(file).replace(/\.[^.]*$/, "");
}
