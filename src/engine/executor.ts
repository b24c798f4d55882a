/**
 * Executes a Plan (DESIGN practice 1: the pure planner decided, this does): builds what a
 * run's step executions share (ExecutionContext), the run's dispatcher (dispatcher.ts: where
 * ready steps go, request and process slots; in-process unless deps say otherwise) and its
 * RunExecution (run-execution.ts: the modes feeding → draining / stopping → done, which
 * start each step once everything it depends on has succeeded and block the dependents of a
 * step that did not), then judges how the run ended. Every effect goes through the injected
 * deps.
 *
 * The run and each slice of steps must already be in the store (RunRecorder); steps may
 * arrive while others run. The executor changes step states only, each through
 * StepTracker.transition (written, then announced, in order: ordered-events.ts).
 */
import os from "node:os";
import PQueue from "p-queue";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import { ExitCode } from "../errors.js";
import type { MediaFacts } from "../models/types.js";
import type { Plan, PlannedStep } from "../plan/types.js";
import type { RunOutcome } from "../store/types.js";
import type { ExecutionContext, ResolvedExecuteOptions } from "./context.js";
import type { EngineDeps, ExecuteOptions } from "./deps.js";
import { ApiHealth, apiHealthMonitor } from "./api-health.js";
import { InputCaptures } from "./input-captures.js";
import { LatestView } from "./latest-view.js";
import { OrderedEvents } from "./ordered-events.js";
import { executeModelStep } from "./model-step.js";
import { REUSE_LANE } from "./dispatcher.js";
import { inProcessDispatcher } from "./in-process-dispatcher.js";
import { RunExecution } from "./run-execution.js";
import { RunControl, type StopReason } from "./run-control.js";
import { executeRunStep } from "./run-step.js";
import type { StepState } from "./states.js";
import { isSuccess } from "./states.js";
import { StepResults } from "./step-results.js";
import { StepTracker } from "./transitions.js";
import { TypicalDurations } from "./typical-durations.js";
import { RunCosts } from "./run-costs.js";
import { usdOf } from "../cost/money.js";
import type { BudgetFigures } from "../cost/budget.js";
import type { BudgetOutcome } from "./events.js";

export interface ExecutionResult {
  status: RunOutcome;
  exitCode: ExitCode;
  /** Steps per state at the end. */
  counts: Record<string, number>;
  /** Steps whose execution crashed on a bug or an unusable database (each also recorded as failed when possible). */
  internalErrors: { address: string; error: unknown }[];
  /** How the budget ended, when the run had one. */
  budget?: BudgetOutcome | undefined;
}

/** The retention of remote output URLs (SPEC §5): reuse ends after it unless `cache.ttl` says otherwise. */
export const DEFAULT_CACHE_TTL_MS = 6 * 24 * 60 * 60 * 1000;
/** Downloads at once, at least: files are local I/O, and a run of concurrency 1 still overlaps a few. */
const MIN_DOWNLOADS = 4;

function resolveOptions(options: ExecuteOptions): ResolvedExecuteOptions {
  return {
    fresh: options.fresh ?? false,
    download: options.download ?? true,
    resubmitUnknown: options.resubmitUnknown ?? false,
    cacheTtlMs: options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS,
  };
}

/** How the run ended, from why it stopped (if it did) and the steps' final states. */
export function judgeRun(
  counts: Record<string, number>,
  stopped: RunControl["reason"],
): Pick<ExecutionResult, "status" | "exitCode"> {
  if (stopped === "auth_failed") return { status: "auth_failed", exitCode: ExitCode.auth };
  if (stopped === "interrupted") return { status: "interrupted", exitCode: ExitCode.interrupted };
  if (stopped === "cancelled") return { status: "cancelled", exitCode: ExitCode.stepsFailed };
  const allSucceeded = Object.entries(counts).every(
    ([state, count]) => count === 0 || isSuccess(state as StepState),
  );
  return allSucceeded
    ? { status: "succeeded", exitCode: ExitCode.ok }
    : { status: "failed", exitCode: ExitCode.stepsFailed };
}

/** What the executor runs: the plan's own part, then its steps, all at once or slice by slice. */
export interface RunFeed extends Pick<Plan, "runId" | "createdAt" | "workflow"> {
  /**
   * The steps, each slice already recorded in the store; a job instance is never split
   * between slices. The run can end only after the last.
   */
  slices: AsyncIterable<readonly PlannedStep[]> | Iterable<readonly PlannedStep[]>;
}

/** What every view says when the run is told to stop early (SPEC §4, signals and cancel). */
const STOP_NOTICES: Record<StopReason, string> = {
  interrupted:
    "stopping: no new submissions; queued requests are cancelled, running ones stay recorded for the next apply",
  cancelled: "cancelled: no new submissions; queued requests are cancelled, running ones are collected",
  auth_failed: "stopping: the API refused the token; nothing more is submitted",
  no_balance: "stopping: the RunComfy account has no balance left; nothing more is submitted",
};

/** Executes a whole plan (its run and steps recorded already). */
export function executePlan(
  plan: Plan,
  deps: EngineDeps,
  options: ExecuteOptions = {},
  control: RunControl = new RunControl(),
): Promise<ExecutionResult> {
  return executeFeed({ ...plan, slices: [plan.steps] }, deps, options, control);
}

/**
 * Executes a run whose steps arrive in slices as they are planned and recorded: each slice's
 * steps start as soon as it is in, while the next are being planned.
 */
export async function executeFeed(
  plan: RunFeed,
  engineDeps: EngineDeps,
  options: ExecuteOptions = {},
  control: RunControl = new RunControl(),
): Promise<ExecutionResult> {
  // Every event of the run is announced in the order made, once what it tells is written.
  const events = new OrderedEvents(engineDeps.events);
  const deps: EngineDeps = { ...engineDeps, events };
  const concurrency = options.concurrency ?? plan.workflow.concurrency;
  const apiOrigin = (await deps.store.runs.get(plan.runId))?.apiOrigin;
  if (apiOrigin === undefined) throw new Error(`run ${plan.runId} is not recorded with its API origin`);
  const processConcurrency = options.processConcurrency ?? Math.max(1, os.availableParallelism());
  const typical = new TypicalDurations(undefined, (model, typicalMs) =>
    deps.events.emit({
      event: "typical_duration",
      at: deps.clock.now(),
      runId: plan.runId,
      model,
      typicalMs,
    }),
  );
  const notices = (level: "info" | "warn", message: string) =>
    deps.events.emit({ event: "notice", at: deps.clock.now(), runId: plan.runId, level, message });
  const latest = new LatestView(
    plan.runId,
    (message) => notices("warn", message),
    () => control.stopped,
  );
  const tracker = new StepTracker(plan.runId, [], {
    ...deps,
    onEnded: (step, state, files, reusedFrom) => latest.stepEnded(step, state, files, reusedFrom),
  });
  const apiHealth = apiHealthMonitor(
    new ApiHealth(),
    () => deps.clock.now(),
    (change, at) =>
      deps.events.emit(
        change.kind === "unreachable"
          ? {
              event: "api_unreachable",
              at,
              runId: plan.runId,
              since: change.since,
              failures: change.failures,
              error: change.error,
            }
          : { event: "api_recovered", at, runId: plan.runId, since: change.since },
      ),
  );
  const dispatcher = (deps.dispatcher ?? inProcessDispatcher)({
    runId: plan.runId,
    concurrency,
    limits: plan.workflow.limits,
    processConcurrency,
  });
  const costs = options.costs ?? new RunCosts(new Map(), undefined);
  tracker.costOf = (address) => costs.stepCost(address);
  const resolvedOptions = resolveOptions(options);
  const context: ExecutionContext = {
    runId: plan.runId,
    workflowName: plan.workflow.name,
    apiOrigin,
    deps,
    prior: await deps.store.history.priorRuns(plan.workflow.name),
    options: resolvedOptions,
    tracker,
    control,
    scheduler: dispatcher.requests,
    processes: dispatcher.processes,
    downloads: new PQueue({ concurrency: Math.max(concurrency, MIN_DOWNLOADS) }),
    typical,
    costs,
    results: new StepResults(plan),
    mediaCache: new Map<string, Promise<MediaFacts>>(),
    captures: new InputCaptures(deps, plan.runId, control.watchSignal, resolvedOptions.download),
    notice: notices,
    apiHealth,
  };

  const seenModels = new Set<string>();
  const execution = new RunExecution({
    tracker,
    dispatcher,
    control,
    execute: (step, lane, leaveLane) =>
      dispatcher.remote
        ? dispatcher.remote.execute(step, lane, (change) => tracker.observed(change))
        : step.kind === "run"
          ? executeRunStep(context, step)
          : lane === REUSE_LANE
            ? // A takeover without downloads never waits for I/O: chained in microtasks, 50,000 of
              // them would keep the event loop (and every request's answer) waiting for seconds.
              setImmediatePromise().then(() => executeModelStep(context, step))
            : executeModelStep(context, step, leaveLane),
    admit: async (steps) => {
      context.results.add(steps);
      for (const step of steps) {
        if (step.model === undefined || seenModels.has(step.model)) continue;
        seenModels.add(step.model);
        // Each model starts at the typical duration earlier runs measured, so the first round
        // of its requests is polled on time.
        typical.seed(step.model, await deps.store.history.typicalDuration(step.model, apiOrigin));
      }
    },
    onStop: (reason) => notices("warn", STOP_NOTICES[reason]),
  });
  let feedError: Error | undefined;
  await execution.run(plan.slices).catch((error: unknown) => {
    feedError = error instanceof Error ? error : new Error(String(error));
  });
  await dispatcher.close();
  // Captures are bounded (size, idle timeout); an interrupt drops those in flight.
  await context.captures.settled();
  await latest.settled();
  await execution.written();
  await events.settled();
  if (feedError !== undefined) throw feedError;

  const counts = tracker.counts();
  return {
    ...judgeRun(counts, control.reason),
    counts,
    internalErrors: execution.internalErrors,
    // Where the budget ended: in memory, or in the shared state when workers kept it.
    budget: budgetOutcome(await costs.budgetFigures(), counts),
  };
}

function budgetOutcome(
  budget: BudgetFigures | undefined,
  counts: Record<string, number>,
): BudgetOutcome | undefined {
  if (!budget) return undefined;
  const held = counts.held ?? 0;
  return {
    maxUsd: usdOf(budget.maxMicros),
    spentUsd: usdOf(budget.spentMicros + budget.reservedMicros),
    reached: budget.reached,
    // Steps behind a held step are blocked: not submitted for the same reason.
    notSubmitted: held + (held > 0 ? (counts.blocked ?? 0) : 0),
  };
}
