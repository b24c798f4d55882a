/**
 * Everything a run does from the workflow's lock on, shared by `apply` and `retry`: take the
 * lock (exit 3, or wait), plan under it, price the plan and check the budget, record the run,
 * execute it in slices while later slices are planned, record how it ended, release the lock.
 * The store is opened and closed by the use case; every other effect comes from its ports.
 */
import { randomBytes } from "node:crypto";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import { UsageError } from "../errors.js";
import type { ModelPriceAnswer } from "../api/answers.js";
import type { ModelRegistry } from "../models/registry.js";
import type { PlannedInstance } from "../plan/plan.js";
import type { PlannedStep } from "../plan/types.js";
import type { StateStore } from "../store/port.js";
import type { RunKind } from "../store/types.js";
import type { Clock } from "../util/clock.js";
import { formatUsd } from "../cost/money.js";
import { countOf } from "../util/counting.js";
import { estimateCost, type CostAssumption, type RequestEstimate } from "../cost/estimate.js";
import type { EngineApi, EngineDeps, ExecuteOptions } from "./deps.js";
import { executeFeed, type ExecutionResult } from "./executor.js";
import { FirstRequestGate } from "./first-request-gate.js";
import { unfinishedElsewhere } from "./prior-runs.js";
import { commonFolder } from "./paths.js";
import { RunControl } from "./run-control.js";
import { RunCosts, type RunSpending } from "./run-costs.js";
import { SharedRunCosts } from "./shared-run-costs.js";
import { readPrices, requestEstimates } from "./prices.js";
import { endRun, RunRecorder, type PlanStream } from "./run-lifecycle.js";
import type { RunPorts } from "./use-case-ports.js";
import { acquireWorkflowLock, DEFAULT_LOCK_TIMING, keepLockAlive } from "./workflow-lock.js";

/** How a run that held the lock ended (the use case adds where its store is). */
export interface LockedOutcome extends Pick<ExecutionResult, "status" | "exitCode" | "counts"> {
  runId: string;
  workflowName: string;
  /** The folder holding every output folder of the run (their common parent). */
  outputsRoot: string | undefined;
}

/** `20250601-120003-a1b2`: sortable by time, unique enough to never collide in one database. */
export function newRunId(now: number, random: () => string = () => randomBytes(2).toString("hex")): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${random()}`;
}

export interface LockedRun {
  kind: RunKind;
  workflowName: string;
  file: string;
  parentRunId?: string | undefined;
  /** Stored with the run (never the token). */
  options: Record<string, unknown>;
  wait: boolean;
  /**
   * Makes the plan once the lock is held, so it sees every earlier run's final state, as a
   * run against `apiOrigin` sees it.
   */
  plan: (store: StateStore, runId: string, now: number, apiOrigin: string) => Promise<PlanStream>;
  execute: ExecuteOptions;
  registry: ModelRegistry;
  /** The budget (micro-dollars) and what to assume per model (SPEC §9): the apply's, or the run a retry retries. */
  cost?: { maxMicros?: number | undefined; assume: Record<string, CostAssumption> } | undefined;
  /** Prices already asked of the API by model (apply asks while its preflight probes); the others are asked here. */
  prices?: ReadonlyMap<string, Promise<ModelPriceAnswer | undefined>> | undefined;
}

/** Whether the run has a model step to submit, re-attach or reuse (its jobs' model steps, counted when planned). */
function submitsToModels(stream: PlanStream): boolean {
  return Object.keys(stream.totals.models ?? {}).length > 0;
}

/**
 * The API of a run without model steps (only `run:` steps): it asks nothing of RunComfy, so it
 * needs no account and no token. On a shared state the process also works for other runs,
 * whose model steps need the API: there the token stays required.
 */
const NO_API: EngineApi = {
  submit: () => Promise.reject(new Error("internal: a run without model steps submitted a request")),
  waitForResult: () => Promise.reject(new Error("internal: a run without model steps polled a request")),
  cancel: () => Promise.reject(new Error("internal: a run without model steps cancelled a request")),
};

/**
 * Prices (read from the API, recorded), each model's estimate per request, and the budget.
 * With a budget, a model without any estimate is refused here, before anything is sent:
 * runflow cannot promise to keep to a budget for requests it cannot put a figure on.
 */
async function runCostsFor(
  store: StateStore,
  api: EngineApi,
  stream: PlanStream,
  run: LockedRun,
  apiOrigin: string,
  context: { clock: Clock; signal: AbortSignal },
): Promise<{ costs: RunCosts; estimates: Map<string, RequestEstimate>; notes: string[] }> {
  const models = Object.keys(stream.totals.models ?? {});
  const price = api.price?.bind(api);
  const asked = run.prices;
  const { prices, notes } = await readPrices(models, {
    apiOrigin,
    source: price && ((model) => asked?.get(model) ?? price(model, { signal: context.signal })),
    store: store.history,
    now: context.clock.now(),
  });
  const learned = new Map(
    await Promise.all(
      models.map(async (model) => [model, await store.history.learnedCost(model, apiOrigin)] as const),
    ),
  );
  const estimates = requestEstimates(models, prices, (model) => learned.get(model), run.cost?.assume ?? {});
  const maxMicros = run.cost?.maxMicros;
  const unpriced = models.filter((model) => estimates.get(model)?.micros === undefined);
  if (maxMicros !== undefined && unpriced.length > 0) {
    throw new UsageError(
      `cannot keep to a budget of ${formatUsd(maxMicros)}: the API gives no price for ${unpriced.join(", ")}`,
      {
        hint: `nothing was submitted; state what a request costs in the workflow (budget: { assume: { "${unpriced[0]}": { usd: 0.5 } } }), or apply without a budget`,
      },
    );
  }
  return { costs: new RunCosts(estimates, maxMicros), estimates, notes };
}

/** The run's budget, given to the shared state; the run's costs as the workers keep them (no budget: as they are). */
async function sharedBudget(
  store: StateStore,
  runId: string,
  costs: RunCosts,
  estimates: ReadonlyMap<string, RequestEstimate>,
): Promise<RunSpending> {
  const maxMicros = costs.budget?.maxMicros;
  if (maxMicros === undefined) return costs;
  const perRequest: Record<string, number> = {};
  for (const [model, estimate] of estimates)
    if (estimate.micros !== undefined) perRequest[model] = estimate.micros;
  await store.budgets.open(runId, { maxMicros, estimates: perRequest });
  return new SharedRunCosts(store.budgets, runId);
}

/**
 * Steps are planned, recorded and handed to the executor in slices of whole job instances:
 * small at first, so the first requests' connections open while little is being planned
 * (each slice holds the event loop), then up to this many. When a gate is given, the first
 * slice is the concurrency window alone and the rest waits for the gate (first-request-gate.ts).
 */
const SLICE_STEPS = 1_000;
const FIRST_SLICE_STEPS = 100;

/** The first slice, and what the rest waits for, when it goes first. */
interface FirstSlice {
  steps: number;
  gate: FirstRequestGate;
}

/** The common folder of every step's outputs, followed as the steps are planned. */
class OutputsRoot {
  folder: string | undefined;
  #last: string | undefined;

  add(outputsDir: string): void {
    if (outputsDir === this.#last) return;
    this.#last = outputsDir;
    this.folder = commonFolder(this.folder === undefined ? [outputsDir] : [this.folder, outputsDir]);
  }
}

/**
 * The plan's instances, recorded in the store a slice at a time, then handed over: the first
 * requests go out while later slices are still being planned. Between slices the event loop
 * turns, so answers are read on time.
 */
async function* recordedSlices(
  stream: PlanStream,
  recorder: RunRecorder,
  outputs: OutputsRoot,
  firstSlice?: FirstSlice,
): AsyncGenerator<PlannedStep[]> {
  let batch: PlannedInstance[] = [];
  let size = 0;
  let first = true;
  let sliceSteps = firstSlice?.steps ?? FIRST_SLICE_STEPS;
  const flush = async (): Promise<PlannedStep[]> => {
    await recorder.record(batch);
    const steps = batch.flatMap((instance) => instance.steps);
    for (const step of steps) outputs.add(step.outputsDir);
    batch = [];
    size = 0;
    return steps;
  };
  for (const instance of stream.instances) {
    batch.push(instance);
    size += instance.steps.length;
    if (size < sliceSteps) continue;
    if (!first) await setImmediatePromise();
    sliceSteps = first && firstSlice ? FIRST_SLICE_STEPS : Math.min(SLICE_STEPS, sliceSteps * 2);
    yield await flush();
    if (first) await firstSlice?.gate.passed();
    first = false;
  }
  if (batch.length > 0) yield await flush();
  await recorder.finish();
}

/**
 * Everything from the lock on, for apply and retry: lock, plan, record, execute, finish,
 * release. The store is opened and closed by the caller.
 */
export async function runLocked(store: StateStore, run: LockedRun, ports: RunPorts): Promise<LockedOutcome> {
  const { clock, random, events } = ports;
  const control = ports.control ?? new RunControl();
  const timing = { ...DEFAULT_LOCK_TIMING, ...ports.lockTiming };
  const runId = ports.runId ?? newRunId(clock.now());
  const notice = (level: "info" | "warn") => (message: string) =>
    events.emit({ event: "notice", at: clock.now(), runId, level, message });

  // Read before the lock and the first request, so a bad value is refused with nothing done.
  const download = ports.downloads();
  const workflowName = run.workflowName;
  // Before the lock: a base URL runflow refuses is a usage error, and nothing is recorded.
  const apiOrigin = ports.api.origin();
  // Before the lock too: queues that are not there (a bad RUNFLOW_QUEUE) are a usage error.
  await ports.cluster?.checkQueues();
  const lockOptions = {
    workflowName,
    runId,
    wait: run.wait,
    timing,
    store,
    clock,
    control,
    notice: notice("info"),
  };
  await acquireWorkflowLock(lockOptions);
  let keeper: { stop(): void } | undefined;
  let failed = false;
  let worker: { stop(): Promise<void> } | undefined;
  try {
    // Planned under the lock: the run that held it may have finished steps since.
    const stream = await run.plan(store, runId, clock.now(), apiOrigin);
    const submits = submitsToModels(stream);
    const api = submits || ports.cluster ? ports.api.client({ poll: stream.workflow.poll }) : NO_API;
    const {
      costs,
      estimates,
      notes: priceNotes,
    } = await runCostsFor(store, api, stream, run, apiOrigin, {
      clock,
      signal: control.submitSignal,
    });
    const concurrency = run.execute.concurrency ?? stream.workflow.concurrency;
    const recorder = new RunRecorder(
      { store, events, clock },
      stream,
      {
        kind: run.kind,
        file: run.file,
        parentRunId: run.parentRunId,
        options: run.options,
        concurrency,
        apiOrigin,
      },
      // A cluster's workers open the run from its first part (its rest is recorded later).
      { openEarly: ports.cluster !== undefined },
    );
    await recorder.start();
    const startedAt = recorder.startedAt;
    // On a shared state the budget is kept in it, before any step is handed out: every
    // worker executing a step of this run decides against it (shared-run-costs.ts).
    const spending = ports.cluster ? await sharedBudget(store, runId, costs, estimates) : costs;
    const prior = await store.history.priorRuns(workflowName);
    for (const line of unfinishedElsewhere(prior, workflowName, apiOrigin)) notice("warn")(line);
    for (const line of priceNotes) notice("warn")(line);
    notice("info")(startEstimate(stream, estimates, run.cost?.maxMicros));
    keeper = keepLockAlive({
      ...lockOptions,
      onLost: () => {
        notice("warn")(`lost the lock of workflow ${workflowName} (another apply took it over); stopping`);
        control.stop("interrupted");
      },
    });
    const outputs = new OutputsRoot();
    const deps: EngineDeps = {
      api,
      store,
      registry: run.registry,
      clock,
      random,
      events,
      download,
      runProcess: ports.runProcess,
      probe: ports.probe,
      stepPolicy: ports.stepPolicy,
    };
    // On a shared state, this process is one more worker of the cluster (SPEC §10); its own
    // steps' states reach the views as the run follows them, like any other worker's.
    // It executes steps of any run, each polled as its own workflow says.
    worker = await ports.cluster?.startWorker(
      { ...deps, events: { emit: () => undefined } },
      control,
      (poll) => ports.api.client({ poll }),
    );
    // The concurrency window first, the rest once its first request left, a step ended, or
    // at most 250 ms later. On a cluster too: the workers take the window's steps without
    // the rest's deliveries reading the state beside them (the rest could not submit before
    // a slot frees anyway); the run's record lets them open it from its first part.
    const gate = submits ? new FirstRequestGate(control) : undefined;
    const firstSlice = gate && { steps: Math.max(1, Math.min(FIRST_SLICE_STEPS, concurrency)), gate };
    const result = await executeFeed(
      { ...stream, slices: recordedSlices(stream, recorder, outputs, firstSlice) },
      {
        ...deps,
        ...(gate && { api: gate.watchApi(api), events: gate.watchEvents(events) }),
        dispatcher: ports.cluster?.dispatcher(store, control),
      },
      { ...run.execute, concurrency, costs: spending },
      control,
    );
    await worker?.stop();
    worker = undefined;
    const outputsRoot = outputs.folder;
    keeper.stop();
    await endRun({ store, events, clock }, runId, startedAt, result);
    if (result.internalErrors.length > 0) throw result.internalErrors[0]!.error;
    return {
      runId,
      workflowName,
      status: result.status,
      exitCode: result.exitCode,
      counts: result.counts,
      outputsRoot,
    };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    keeper?.stop();
    await worker?.stop().catch(() => undefined);
    const released = store.locks.release(workflowName, runId);
    // A release that fails too must not hide why the run failed.
    await (failed ? released.catch(() => undefined) : released);
  }
}

/**
 * The estimate `apply` states at its start: every model step of the plan at its model's
 * estimate — an upper bound, since steps reused or re-attached as the run goes cost nothing
 * new (`runflow plan` tells them apart).
 */
function startEstimate(
  stream: PlanStream,
  estimates: ReadonlyMap<string, RequestEstimate>,
  maxMicros: number | undefined,
): string {
  const counts = new Map(
    Object.entries(stream.totals.models ?? {}).map(([model, steps]) => [model, { submit: steps, reused: 0 }]),
  );
  const estimate = estimateCost(counts, estimates);
  const steps = estimate.models.reduce((sum, model) => sum + model.submit, 0);
  const unknown = estimate.unknownModels.length > 0 ? " + unknown" : "";
  const budget = maxMicros === undefined ? "" : `; budget ${formatUsd(maxMicros)}`;
  const lines = [
    `estimate: at most ${formatUsd(estimate.micros)}${unknown} for ${countOf(steps, "model step")} before reuse${budget}`,
  ];
  for (const model of estimate.models) {
    const spend = model.micros === undefined ? "unknown" : formatUsd(model.micros);
    lines.push(`  ${model.model}: ${spend} for ${countOf(model.submit, "step")} — ${model.basis}`);
  }
  return lines.join("\n");
}
