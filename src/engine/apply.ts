/**
 * The `apply` use case (SPEC §2, §4–§5): validate the workflow and preflight its static
 * media (exit 2 before anything is submitted), take the workflow's lock (exit 3), plan with
 * what earlier runs left (reuse), record the run, execute it, record how it ended.
 *
 * `retry` shares everything from the lock on (runLocked).
 */
import { randomBytes } from "node:crypto";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import path from "node:path";
import { RunComfyClient, type RetryOptions } from "../api/client.js";
import { downloadFile, maxBytesFromEnvironment } from "../api/download.js";
import { readApiToken } from "../api/env.js";
import { apiOriginOf } from "../api/origin.js";
import { DEFAULT_POLL_POLICY, type PollPolicy as ClientPollPolicy } from "../api/retry-policy.js";
import { UsageError, WorkflowInvalidError } from "../errors.js";
import { loadModelRegistry, type ModelRegistry } from "../models/registry.js";
import {
  planInstances,
  planModelCounts,
  planTotals,
  planWorkflow,
  type PlannedInstance,
} from "../plan/plan.js";
import type { Plan, PlannedStep } from "../plan/types.js";
import type { StateStore, StateStoreOpener } from "../store/port.js";
import { tokensFromEnvironment } from "../store/redact.js";
import type { RunKind } from "../store/types.js";
import { systemClock, type Clock, type Random } from "../util/clock.js";
import { checkWorkflow, type PollPolicy, type Workflow } from "../workflow/index.js";
import { preflightMedia } from "./preflight.js";
import type { EngineApi, ExecuteOptions, ProcessRunner } from "./deps.js";
import type { StepPolicy } from "./step-policy.js";
import type { EventBus } from "./events.js";
import { executeFeed, type ExecutionResult } from "./executor.js";
import { priorStateAt, unfinishedElsewhere } from "./prior-runs.js";
import { retryingTransport } from "./probe-transport.js";
import { commonFolder } from "./paths.js";
import { runProcess as defaultRunProcess } from "./process-runner.js";
import { DEFAULT_STATE_PATH } from "./state-path.js";
import { RunControl } from "./run-control.js";
import { RunCosts } from "./run-costs.js";
import { formatUsd } from "../cost/money.js";
import { countOf } from "../util/counting.js";
import { estimateCost, type CostAssumption, type RequestEstimate } from "../cost/estimate.js";
import { readPrices, requestEstimates } from "./prices.js";
import { endRun, RunRecorder, type PlanStream } from "./run-lifecycle.js";
import { acquireWorkflowLock, DEFAULT_LOCK_TIMING, keepLockAlive, type LockTiming } from "./workflow-lock.js";

/** Where the API is: from the environment (RUNCOMFY_API_TOKEN, RUNCOMFY_BASE_URL), or given (the emulator). */
export interface ApiTarget {
  baseUrl: string;
  token: string;
  /**
   * What the run records as its API (api/origin.ts); default the base URL's origin. The
   * in-process emulator, on a new port each time, passes EMBEDDED_EMULATOR_ORIGIN.
   */
  origin?: string | undefined;
}

export interface ApplyRequest {
  /** The workflow file as the user named it. */
  file: string;
  /** Relative paths (the file, the state database) start here. Default process.cwd(). */
  cwd?: string | undefined;
  /** The state database (`--state`); default state/runflow.db. */
  statePath?: string | undefined;
  vars?: Readonly<Record<string, string>> | undefined;
  only?: readonly string[] | undefined;
  fresh?: boolean | undefined;
  concurrency?: number | undefined;
  download?: boolean | undefined;
  wait?: boolean | undefined;
  /** Extra model schema folders (`--models`). */
  models?: readonly string[] | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Run against this API instead of the environment's (`--emulator`). */
  api?: ApiTarget | undefined;
  /** `--max-cost`, in micro-dollars: overrides the workflow's `budget.max_cost`. */
  maxCostMicros?: number | undefined;
}

/** The effects an apply uses, injectable so tests drive them. */
export interface ApplyServices {
  events: EventBus;
  /** Opens the state store (the composition root, src/app/, passes the SQLite adapter's). */
  openStore: StateStoreOpener;
  /** Signals and `cancel` stop the run through it. */
  control?: RunControl | undefined;
  clock?: Clock | undefined;
  random?: Random | undefined;
  fetch?: typeof fetch | undefined;
  runProcess?: ProcessRunner | undefined;
  lockTiming?: Partial<LockTiming> | undefined;
  /** Retries of single API calls (tests make them quick). */
  apiRetry?: RetryOptions | undefined;
  /** Replaces the RunComfy client altogether (engine tests). */
  api?: EngineApi | undefined;
  /** Default: a new id from the time and a random suffix. */
  runId?: string | undefined;
  /** What a step does about each error; default STEP_POLICY (tests inject another table). */
  stepPolicy?: StepPolicy | undefined;
}

export interface ApplyOutcome extends Pick<ExecutionResult, "status" | "exitCode" | "counts"> {
  runId: string;
  workflowName: string;
  /** Absolute path of the state database. */
  statePath: string;
  /** The folder holding every output folder of the run (their common parent). */
  outputsRoot: string | undefined;
}

export { DEFAULT_STATE_PATH };

/** `20250601-120003-a1b2`: sortable by time, unique enough to never collide in one database. */
export function newRunId(now: number, random: () => string = () => randomBytes(2).toString("hex")): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${random()}`;
}

/** The workflow's `poll` settings as the client's poll schedule: `interval` is the first and shortest wait. */
export function clientPollPolicy(poll: PollPolicy | undefined): Partial<ClientPollPolicy> {
  const policy: Partial<ClientPollPolicy> = {};
  if (poll?.intervalMs !== undefined) {
    policy.initialMs = poll.intervalMs;
    policy.minMs = Math.min(DEFAULT_POLL_POLICY.minMs, poll.intervalMs);
  }
  if (poll?.maxIntervalMs !== undefined) policy.maxMs = poll.maxIntervalMs;
  return policy;
}

/** The API origin a run at this target records, and reuses and re-attaches from (a usage error for a bad base URL). */
export function apiOriginFor(request: Pick<ApplyRequest, "api" | "env">): string {
  if (request.api) return request.api.origin ?? apiOriginOf(request.api.baseUrl);
  const env = request.env ?? process.env;
  return apiOriginOf(env.RUNCOMFY_BASE_URL?.trim() || undefined);
}

function apiFor(
  workflow: Plan["workflow"],
  request: Pick<ApplyRequest, "api" | "env">,
  services: ApplyServices,
  clock: Clock,
  random: Random,
): EngineApi {
  if (services.api) return services.api;
  const env = request.env ?? process.env;
  const target = request.api ?? {
    token: readApiToken(env) ?? "",
    baseUrl: env.RUNCOMFY_BASE_URL?.trim() || undefined,
  };
  if (target.token === "") {
    throw new UsageError("no RunComfy API token: RUNCOMFY_API_TOKEN is not set", {
      hint: "export RUNCOMFY_API_TOKEN=<your API key>, or try runflow without an account: `runflow apply FILE --emulator`",
    });
  }
  return new RunComfyClient({
    token: target.token,
    ...(target.baseUrl ? { baseUrl: target.baseUrl } : {}),
    poll: clientPollPolicy(workflow.poll),
    clock,
    random,
    ...(services.fetch ? { fetch: services.fetch } : {}),
    ...(services.apiRetry ? { retry: services.apiRetry } : {}),
  });
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
  request: Pick<ApplyRequest, "api" | "env">;
  /** The budget (micro-dollars) and what to assume per model (SPEC §9); none for a retry. */
  cost?: { maxMicros?: number | undefined; assume: Record<string, CostAssumption> } | undefined;
}

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
  const { prices, notes } = await readPrices(models, {
    apiOrigin,
    source: price && ((model) => price(model, { signal: context.signal })),
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

/**
 * Steps are planned, recorded and handed to the executor in slices of whole job instances:
 * small at first, so the first requests' connections open while little is being planned
 * (each slice holds the event loop), then up to this many.
 */
const SLICE_STEPS = 1_000;
const FIRST_SLICE_STEPS = 100;

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
): AsyncGenerator<PlannedStep[]> {
  let batch: PlannedInstance[] = [];
  let size = 0;
  let first = true;
  let sliceSteps = FIRST_SLICE_STEPS;
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
    first = false;
    sliceSteps = Math.min(SLICE_STEPS, sliceSteps * 2);
    yield await flush();
  }
  if (batch.length > 0) yield await flush();
  await recorder.finish();
}

/**
 * Everything from the lock on, for apply and retry: lock, plan, record, execute, finish,
 * release. The store is opened and closed by the caller.
 */
export async function runLocked(
  store: StateStore,
  run: LockedRun,
  services: ApplyServices,
): Promise<Omit<ApplyOutcome, "statePath">> {
  const clock = services.clock ?? systemClock;
  const random = services.random ?? Math.random;
  const control = services.control ?? new RunControl();
  const timing = { ...DEFAULT_LOCK_TIMING, ...services.lockTiming };
  const runId = services.runId ?? newRunId(clock.now());
  const notice = (level: "info" | "warn") => (message: string) =>
    services.events.emit({ event: "notice", at: clock.now(), runId, level, message });

  // Read before the lock and the first request, so a bad value is refused with nothing done.
  const maxDownloadBytes = maxBytesFromEnvironment(run.request.env ?? process.env);
  const workflowName = run.workflowName;
  // Before the lock: a base URL runflow refuses is a usage error, and nothing is recorded.
  const apiOrigin = apiOriginFor(run.request);
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
  try {
    // Planned under the lock: the run that held it may have finished steps since.
    const stream = await run.plan(store, runId, clock.now(), apiOrigin);
    const api = apiFor(stream.workflow, run.request, services, clock, random);
    const {
      costs,
      estimates,
      notes: priceNotes,
    } = await runCostsFor(store, api, stream, run, apiOrigin, {
      clock,
      signal: control.submitSignal,
    });
    const concurrency = run.execute.concurrency ?? stream.workflow.concurrency;
    const recorder = new RunRecorder({ store, events: services.events, clock }, stream, {
      kind: run.kind,
      file: run.file,
      parentRunId: run.parentRunId,
      options: run.options,
      concurrency,
      apiOrigin,
    });
    await recorder.start();
    const startedAt = recorder.startedAt;
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
    const result = await executeFeed(
      { ...stream, slices: recordedSlices(stream, recorder, outputs) },
      {
        api,
        store,
        registry: run.registry,
        clock,
        random,
        events: services.events,
        // A caller's own cap (an input capture's) only lowers RUNFLOW_MAX_DOWNLOAD_MB's.
        download: (url, destination, options) =>
          downloadFile(url, destination, {
            ...options,
            maxBytes: Math.min(maxDownloadBytes, options.maxBytes ?? maxDownloadBytes),
          }),
        runProcess: services.runProcess ?? defaultRunProcess,
        probe: retryingTransport({ fetch: services.fetch, clock, random }),
        stepPolicy: services.stepPolicy,
      },
      { ...run.execute, concurrency, costs },
      control,
    );
    const outputsRoot = outputs.folder;
    keeper.stop();
    await endRun({ store, events: services.events, clock }, runId, startedAt, result);
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

/** Opens the state store of a command (`--state`, relative to `cwd`). */
export async function openStateStore(
  open: StateStoreOpener,
  statePath: string | undefined,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ store: StateStore; path: string }> {
  const resolved = path.resolve(cwd, statePath ?? DEFAULT_STATE_PATH);
  return { store: await open(resolved, { secrets: tokensFromEnvironment(env) }), path: resolved };
}

/**
 * Closes a command's store (making its writes durable). When the command failed, a close
 * that fails too (the same broken disk) does not hide the first error, which says more.
 */
export async function closeStore(store: StateStore, failed: boolean): Promise<void> {
  if (failed) await store.close().catch(() => undefined);
  else await store.close();
}

/**
 * What to do about a media host that gave no answer: the var that names it and what to pass
 * instead. Under `--emulator` (`emulatorUrl`), also that the emulator serves only its own
 * test media — it cannot stand in for a host on the internet.
 */
export function unreachableMediaHint(
  origin: string,
  vars: Readonly<Record<string, unknown>>,
  emulatorUrl: string | undefined,
): string {
  const names = Object.entries(vars)
    .filter(
      ([, value]) => typeof value === "string" && URL.canParse(value) && new URL(value).origin === origin,
    )
    .map(([name]) => name);
  const [name] = names;
  const where =
    name === undefined
      ? `${origin} gave no answer: check the URLs on it and this machine's network`
      : `${origin} (vars.${name}) gave no answer: pass --var ${name}=URL of a host this machine can reach`;
  if (emulatorUrl === undefined) return where;
  return (
    `${where}. The emulator serves only its test media, ${emulatorUrl}/media/image.png?w=W&h=H and /media/video.mp4` +
    (name === undefined ? "" : ` (--var ${name}=${emulatorUrl} when the paths are those)`)
  );
}

/** Loads and validates the workflow, then preflights its static media: exit 2 before anything runs. */
async function loadChecked(
  file: string,
  request: ApplyRequest,
  registry: ModelRegistry,
  services: ApplyServices,
): Promise<Workflow> {
  const check = await checkWorkflow(file, {
    registry,
    vars: request.vars,
    env: request.env ?? process.env,
    collectMedia: true,
  });
  if (!check.workflow) throw new WorkflowInvalidError(check.diagnostics);
  const vars = check.workflow.vars;
  const preflight = await preflightMedia(check.media, registry, {
    transport: retryingTransport({ fetch: services.fetch, clock: services.clock, random: services.random }),
    unreachableHint: (origin) => unreachableMediaHint(origin, vars, request.api?.baseUrl),
  });
  if (preflight.length > 0) {
    throw new WorkflowInvalidError(preflight, {
      hint: "fix the media (or the URLs) above; nothing was submitted",
    });
  }
  return check.workflow;
}

/**
 * The job instances the workflow's latest run left unfinished (undefined when there are
 * none): a resumed apply plans them first, so its first requests go out before the
 * thousands of steps it only takes over are planned.
 */
async function unfinishedBefore(
  store: StateStore,
  workflowName: string,
): Promise<ReadonlySet<string> | undefined> {
  const latest = await store.runs.latest(workflowName);
  if (!latest) return undefined;
  const unfinished = await store.runs.unfinishedInstances(latest.id);
  return unfinished.size > 0 ? unfinished : undefined;
}

export async function applyWorkflow(request: ApplyRequest, services: ApplyServices): Promise<ApplyOutcome> {
  const cwd = request.cwd ?? process.cwd();
  const env = request.env ?? process.env;
  if (
    request.concurrency !== undefined &&
    !(Number.isInteger(request.concurrency) && request.concurrency >= 1)
  ) {
    throw new UsageError(`Expected \`--concurrency\` to be an integer ≥ 1, got \`${request.concurrency}\``);
  }
  const registry = loadModelRegistry({ dirs: [...(request.models ?? [])], cwd });
  // Held only until it is planned: with 100,000 items, the run should not keep them all.
  let toPlan: Workflow | undefined = await loadChecked(
    path.resolve(cwd, request.file),
    request,
    registry,
    services,
  );
  const workflowName = toPlan.name;
  const cacheTtlMs = toPlan.cache.ttlMs;
  const budget = {
    maxMicros: request.maxCostMicros ?? toPlan.budget.maxMicros,
    assume: toPlan.budget.assume,
  };

  const { store, path: statePath } = await openStateStore(services.openStore, request.statePath, cwd, env);
  let failed = false;
  try {
    const outcome = await runLocked(
      store,
      {
        kind: "apply",
        workflowName,
        file: request.file,
        wait: request.wait ?? false,
        options: {
          concurrency: request.concurrency,
          fresh: request.fresh ?? false,
          only: request.only ?? [],
          vars: request.vars ?? {},
          download: request.download ?? true,
          emulator: request.api !== undefined,
          cacheTtlMs,
          maxCostMicros: budget.maxMicros,
        },
        plan: async (lockedStore, runId, now, apiOrigin) => {
          const workflow = toPlan!;
          // Held by the stream only until it is planned: 100,000 items need not stay.
          toPlan = undefined;
          const options = { runId, now, fresh: request.fresh ?? false, only: request.only ?? [] };
          const first = request.fresh ? undefined : await unfinishedBefore(lockedStore, workflow.name);
          // The planner is synchronous: it reads earlier runs through the store's lookup.
          const prior = await lockedStore.history.priorRuns(workflow.name);
          return {
            runId,
            createdAt: now,
            workflow: planWorkflow(workflow),
            totals: {
              ...planTotals(workflow, options.only),
              models: planModelCounts(workflow, options.only),
            },
            instances: planInstances(
              workflow,
              priorStateAt(prior, apiOrigin, { fresh: request.fresh, unfinished: false }),
              {
                ...options,
                later: first && ((instance: string) => !first.has(instance)),
              },
            ),
          };
        },
        execute: {
          concurrency: request.concurrency,
          fresh: request.fresh,
          download: request.download,
          cacheTtlMs,
        },
        registry,
        request,
        cost: budget,
      },
      services,
    );
    return { ...outcome, statePath };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await closeStore(store, failed);
  }
}
