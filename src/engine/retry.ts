/**
 * The `retry` use case (SPEC §2): re-run the steps of a run that did not succeed — failed,
 * timed out, cancelled, blocked, or left unfinished — and the steps that depend on them,
 * from the plan stored with the run. What they depend on and what succeeded is reused, not
 * run again. `unknown` steps (maybe already billed) only with `resubmitUnknown`.
 */
import { UsageError } from "../errors.js";
import { countDecisions } from "../plan/plan.js";
import type { Plan, PlannedStep } from "../plan/types.js";
import type { StateStore } from "../store/port.js";
import type { RunRecord, StepRecord } from "../store/types.js";
import { describeOrigin, EMBEDDED_EMULATOR_ORIGIN } from "../api/origin.js";
import { newRunId, runLocked, type LockedOutcome } from "./locked-run.js";
import { closeStore, openStoreAt } from "./store-session.js";
import type { ApiTarget, Placed, RunPorts } from "./use-case-ports.js";
import { DEFAULT_CACHE_TTL_MS } from "./executor.js";
import { findRun } from "./find-run.js";
import { isSuccess } from "./states.js";
import { reusableOf } from "./reuse.js";
import { decodePlan, readStoredPlan } from "./stored-plan.js";
import { streamOf } from "./run-lifecycle.js";
import type { CostAssumption } from "../cost/estimate.js";

export interface RetryRequest {
  /** The run to retry; default the latest. */
  run?: string | undefined;
  /** `--step`: a step address (`JOB/KEY/STEP`), an instance (`JOB/KEY`), a job, or a step id. */
  steps?: readonly string[] | undefined;
  resubmitUnknown?: boolean | undefined;
  concurrency?: number | undefined;
  wait?: boolean | undefined;
  cwd?: string | undefined;
  statePath?: string | undefined;
  models?: readonly string[] | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Run against this API instead of the environment's (`--emulator`). */
  api?: ApiTarget | undefined;
  /** `--max-cost`, in micro-dollars: overrides the budget of the run retried. */
  maxCostMicros?: number | undefined;
}

export type RetryOutcome =
  | (LockedOutcome & { statePath: string; parentRunId: string; nothingToRetry?: false })
  | { nothingToRetry: true; parentRunId: string; statePath: string };

/**
 * A retry takes over the results its steps read from the run it retries: those belong to the
 * API that run was made at, so it is retried there only (an emulator's test video is no
 * input for a real request, and a request id is polled only where it was made).
 */
function checkSameApi(parent: RunRecord, apiOrigin: string): void {
  if (parent.apiOrigin === apiOrigin) return;
  const embedded = parent.apiOrigin === EMBEDDED_EMULATOR_ORIGIN;
  throw new UsageError(
    `run ${parent.id} was made at ${describeOrigin(parent.apiOrigin)}; this retry would run at ${describeOrigin(apiOrigin)}`,
    {
      hint: embedded
        ? `retry it there: runflow retry ${parent.id} --emulator (or \`runflow apply ${parent.workflowFile}\` to run it at the API)`
        : parent.apiOrigin === undefined
          ? `\`runflow apply ${parent.workflowFile}\` runs what is missing at this API`
          : `set RUNCOMFY_BASE_URL=${parent.apiOrigin} to retry it there, or \`runflow apply ${parent.workflowFile}\` to run what is missing at this API`,
    },
  );
}

function matches(address: string, pattern: string): boolean {
  return address === pattern || address.startsWith(`${pattern}/`) || address.endsWith(`/${pattern}`);
}

/**
 * The retry's plan: the steps to run again (closed over their dependents), and, as `reuse`,
 * the succeeded steps they read. A step whose dependency neither succeeded nor runs again
 * (an `unknown` one, without resubmitting) cannot run and is left out.
 */
export function retryPlan(
  stored: Plan,
  records: ReadonlyMap<string, StepRecord>,
  options: { runId: string; now: number; steps?: readonly string[] | undefined; resubmitUnknown: boolean },
): Plan {
  const wanted = (step: PlannedStep): boolean => {
    const state = records.get(step.address)?.state;
    if (state === undefined || isSuccess(state)) return false;
    if (state === "unknown" && !options.resubmitUnknown) return false;
    return (
      !options.steps || options.steps.length === 0 || options.steps.some((p) => matches(step.address, p))
    );
  };
  const selected = new Set<string>();
  const succeeded = (address: string) => {
    const state = records.get(address)?.state;
    return state !== undefined && isSuccess(state);
  };
  // Plan order is dependency order: each step is judged after everything it depends on.
  for (const step of stored.steps) {
    const dependsOnSelected = step.dependsOn.some((d) => selected.has(d));
    if (!wanted(step) && !(dependsOnSelected && !succeeded(step.address))) continue;
    if (step.dependsOn.every((d) => selected.has(d) || succeeded(d))) selected.add(step.address);
  }
  const needed = new Set<string>();
  for (const step of stored.steps) {
    if (!selected.has(step.address)) continue;
    for (const dependency of step.dependsOn) if (!selected.has(dependency)) needed.add(dependency);
  }
  const steps: PlannedStep[] = [];
  for (const step of stored.steps) {
    if (needed.has(step.address)) {
      steps.push({ ...step, decision: "reuse", reuse: reusableOf(records.get(step.address)!) });
    } else if (selected.has(step.address)) {
      const again: PlannedStep = { ...step };
      delete again.reuse;
      again.decision = step.kind === "run" ? "run" : step.body ? "submit" : "deferred";
      steps.push(again);
    }
  }
  return { ...stored, runId: options.runId, createdAt: options.now, steps, counts: countDecisions(steps) };
}

interface StoredOptions {
  download?: boolean;
  cacheTtlMs?: number;
  /** The run was on the in-process emulator of `apply --emulator`. */
  emulator?: boolean;
  /** Its budget (`--max-cost` or `budget.max_cost`) and what it assumed per model. */
  maxCostMicros?: number;
  budgetAssume?: Record<string, CostAssumption>;
}

export async function retryRun(request: Placed<RetryRequest>, ports: RunPorts): Promise<RetryOutcome> {
  const { clock } = ports;
  const { store, path: statePath } = await openStoreAt(ports.openStore, request.statePath, request);
  let failed = false;
  try {
    const parent = await findRun(store, request.run, statePath);
    checkSameApi(parent, ports.api.origin());
    const saved = await readStoredPlan(store, parent.id);
    if (!saved) {
      throw new UsageError(`run ${parent.id} has no stored plan runflow can retry from`, {
        hint: "run `runflow apply FILE` again instead: it finishes what is missing",
      });
    }
    const recordsOf = async (from: StateStore) =>
      new Map((await from.steps.list(parent.id)).map((record) => [record.address, record]));
    const records = await recordsOf(store);
    const stored = decodePlan(saved, records);
    const runId = ports.runId ?? newRunId(clock.now());
    const probe = retryPlan(stored, records, {
      runId,
      now: clock.now(),
      steps: request.steps,
      resubmitUnknown: request.resubmitUnknown ?? false,
    });
    if (probe.counts.total === probe.counts.reuse)
      return { nothingToRetry: true, parentRunId: parent.id, statePath };
    const parentOptions = (parent.options ?? {}) as StoredOptions;
    const cacheTtlMs = parentOptions.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    // The run's budget holds for its retry too (a budget of its own, like each apply's): the
    // steps it held back for the budget are among those retried, and must not be submitted
    // past what the user set. `--max-cost` overrides it.
    const budget = {
      maxMicros: request.maxCostMicros ?? parentOptions.maxCostMicros,
      assume: parentOptions.budgetAssume ?? {},
    };
    const outcome = await runLocked(
      store,
      {
        kind: "retry",
        workflowName: parent.workflowName,
        file: parent.workflowFile,
        parentRunId: parent.id,
        wait: request.wait ?? false,
        options: {
          steps: request.steps ?? [],
          resubmitUnknown: request.resubmitUnknown ?? false,
          concurrency: request.concurrency,
          download: parentOptions.download ?? true,
          emulator: request.api !== undefined,
          cacheTtlMs,
          maxCostMicros: budget.maxMicros,
          ...(Object.keys(budget.assume).length > 0 ? { budgetAssume: budget.assume } : {}),
        },
        // Made again under the lock: the parent's steps may have changed while waiting for it.
        plan: async (lockedStore, id, now) =>
          streamOf(
            retryPlan(stored, await recordsOf(lockedStore), {
              runId: id,
              now,
              steps: request.steps,
              resubmitUnknown: request.resubmitUnknown ?? false,
            }),
          ),
        execute: {
          concurrency: request.concurrency,
          download: parentOptions.download ?? true,
          resubmitUnknown: request.resubmitUnknown ?? false,
          cacheTtlMs,
        },
        registry: ports.models(),
        cost: budget,
      },
      { ...ports, runId },
    );
    return { ...outcome, statePath, parentRunId: parent.id };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await closeStore(store, failed);
  }
}
