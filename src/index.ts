/**
 * runflow as a library (README "Use runflow as a library"): what the CLI does, callable from
 * a Node program — load and validate a workflow, plan it, apply it with an event listener,
 * read the runs of a state database — and the ports a program can plug its own parts into.
 *
 * The top layer of src/ beside the CLI (docs/decisions.md, "Layers"): it adds no behaviour,
 * only the few defaults a command line would otherwise give (where files are, a listener
 * instead of the views). Everything it returns is the engine's own types.
 */
import path from "node:path";
import { resolveStateLocation } from "./store/location.js";
import { EMBEDDED_EMULATOR_ORIGIN } from "./api/origin.js";
import type { EmulatorOptions, RunningEmulator } from "./emulator/index.js";
import { applyWorkflow, openStateStore } from "./app/index.js";
import { DEFAULT_STATE_PATH, type ApiTarget, type ApplyOutcome, type ApplyRequest } from "./engine/apply.js";
import { EventBus, type RunEventListener } from "./engine/events.js";
import { RunControl } from "./engine/run-control.js";
import { loadModelRegistry, type ModelRegistry } from "./models/registry.js";
import { emptyPriorState } from "./plan/prior-state.js";
import { planRun } from "./plan/plan.js";
import type { Plan } from "./plan/types.js";
import type { EngineApi } from "./engine/deps.js";
import type { StateStore } from "./store/port.js";
import type { RunRecord } from "./store/types.js";
import { WorkflowInvalidError } from "./errors.js";
import { checkWorkflow, type WorkflowCheck } from "./workflow/load.js";
import type { Workflow } from "./workflow/types.js";

// ─── Errors and exit codes ──────────────────────────────────────────────────────────────

/**
 * The exit codes of the CLI (0 ok, 1 steps failed, 2 invalid workflow or invocation, 3 lock
 * held, 4 token refused, 130 interrupted), and the errors that carry them: every error
 * runflow throws on purpose is a `RunflowError` with an `exitCode`.
 */
export {
  AuthError,
  ExitCode,
  formatDiagnostic,
  InterruptedError,
  isRunflowError,
  LockHeldError,
  RunflowError,
  UsageError,
  WorkflowInvalidError,
  type Diagnostic,
  type SourceLocation,
} from "./errors.js";
/** Errors of the state database (busy, missing, newer than this version). */
export { StateBusyError, StateStoreError } from "./store/errors.js";

// ─── Workflows ──────────────────────────────────────────────────────────────────────────

/** Where a workflow is read from and what it is checked against. */
export interface WorkflowOptions {
  /** Relative paths (the workflow file, `models`) start here. Default `process.cwd()`. */
  cwd?: string | undefined;
  /** Overrides of the file's `vars` (the CLI's `--var NAME=VALUE`). */
  vars?: Readonly<Record<string, string>> | undefined;
  /** Folders of extra model schema files (the CLI's `--models`); the built-in models are always known. */
  models?: readonly string[] | undefined;
  /** What templates read as `env.NAME`. Default `process.env`; the token variables are never read. */
  env?: NodeJS.ProcessEnv | undefined;
}

function registryFor(options: WorkflowOptions): ModelRegistry {
  return loadModelRegistry({ dirs: [...(options.models ?? [])], cwd: options.cwd ?? process.cwd() });
}

/**
 * Checks a workflow file as `runflow validate` does (syntax, structure, rules, every model
 * input), without touching the network. Never throws for a bad workflow: the result holds
 * the resolved workflow, or every problem found with its file, line and column.
 */
export async function validateWorkflow(file: string, options: WorkflowOptions = {}): Promise<WorkflowCheck> {
  return checkWorkflow(path.resolve(options.cwd ?? process.cwd(), file), {
    registry: registryFor(options),
    vars: options.vars,
    env: options.env,
  });
}

/**
 * Loads a workflow file, resolved and checked. Throws `WorkflowInvalidError` (exit code 2)
 * listing every problem when it is not valid.
 */
export async function loadWorkflow(file: string, options: WorkflowOptions = {}): Promise<Workflow> {
  const check = await validateWorkflow(file, options);
  if (!check.workflow) throw new WorkflowInvalidError(check.diagnostics);
  return check.workflow;
}

// ─── Plans ──────────────────────────────────────────────────────────────────────────────

/** What a plan covers. */
export interface PlanOptions {
  /** Only these jobs or steps (`JOB` or `JOB/STEP`), with what they need; default all. */
  only?: readonly string[] | undefined;
  /** The run id templates see as `run.id`. Default `plan-` and the time. */
  runId?: string | undefined;
  /** Now, in ms since the epoch (it fixes `run.date`). Default the clock. */
  now?: number | undefined;
}

/**
 * Plans a loaded workflow as a first apply would: every step with its request body and
 * fingerprint, each one `submit`. (`runflow plan` also reads the state database to show what
 * an apply would reuse or resume; `apply` does that itself.)
 */
export function plan(workflow: Workflow, options: PlanOptions = {}): Plan {
  const now = options.now ?? Date.now();
  return planRun(workflow, emptyPriorState, {
    runId: options.runId ?? `plan-${new Date(now).toISOString().replace(/[-:]/g, "").slice(0, 15)}`,
    now,
    fresh: false,
    only: options.only ?? [],
  });
}

// ─── Apply ──────────────────────────────────────────────────────────────────────────────

/** An apply as `runflow apply` makes it, plus how a program follows and stops it, and its own parts. */
export interface ApplyOptions extends ApplyRequest {
  /**
   * Your own state store: any implementation of the `StateStore` port (store/port.ts; the
   * conformance suite, test/store-conformance.ts, says what it must do). The apply runs on
   * it and leaves it open; `statePath` is then not opened. Default: the SQLite file at
   * `statePath`.
   */
  store?: StateStore | undefined;
  /** Your own API client (`EngineApi`) in place of the RunComfy client `api` would build. */
  client?: EngineApi | undefined;
  /** Called with every event of the run (the CLI's `--json` lines are these events). */
  onEvent?: RunEventListener | undefined;
  /** Aborting it stops the run as Ctrl-C does: nothing new is submitted, the outcome is `interrupted`. */
  signal?: AbortSignal | undefined;
}

/**
 * Validates, plans and runs a workflow to completion, as `runflow apply FILE` does: it
 * resumes what an earlier apply left unfinished, reuses what already succeeded, and records
 * everything in the state database (`statePath`, default `state/runflow.db` under `cwd`).
 * The API is the environment's (`RUNCOMFY_API_TOKEN`, `RUNCOMFY_BASE_URL` in `env`) unless
 * `api` names another, such as an emulator (`emulatorApi`).
 *
 * Resolves with how the run ended and its exit code (`exitCode` 1 when steps failed).
 * Rejects, before anything is submitted, with `WorkflowInvalidError` (2), `UsageError` (2),
 * `LockHeldError` (3) or `AuthError` (4).
 */
export async function apply(options: ApplyOptions): Promise<ApplyOutcome> {
  const { onEvent, signal, store, client, ...request } = options;
  const events = new EventBus();
  if (onEvent) events.subscribe(onEvent);
  const control = new RunControl();
  const stop = (): void => control.stop("interrupted");
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });
  try {
    return await applyWorkflow(request, { events, control, store, api: client });
  } finally {
    signal?.removeEventListener("abort", stop);
  }
}

/**
 * The use cases through the composition root (src/app/), for a program that brings its own
 * parts (`ApplyServices`, `CancelServices`): the event bus, a run control, a clock, an
 * `EngineApi` as `api` in place of the RunComfy client, and a `StateStore` — an open one as
 * `store`, or an opener as `openStore`. What is not given is the real adapter: the SQLite
 * file at `statePath` (`openStateStore`), the RunComfy client from the environment.
 */
export { applyWorkflow, cancelRun, openStateStore, retryRun } from "./app/index.js";
export type { ApplyServices, CancelServices } from "./app/index.js";
export { DEFAULT_STATE_PATH } from "./engine/apply.js";
export type { ApiTarget, ApplyOutcome, ApplyRequest } from "./engine/apply.js";
export type { CancelOutcome, CancelRequest } from "./engine/cancel.js";
export type { RetryOutcome, RetryRequest } from "./engine/retry.js";
/** Stops a run from outside (`stop("interrupted")`, `stop("cancelled")`). */
export { RunControl, type StopReason } from "./engine/run-control.js";

// ─── Events ─────────────────────────────────────────────────────────────────────────────

/** The events of a run, in the order it emits them (README "Machine-readable output"). */
export { EventBus } from "./engine/events.js";
export type * from "./engine/events.js";
/** The states a step goes through, and which of them end it. */
export { isSuccess, isTerminal, StepState, TERMINAL_STATES } from "./engine/states.js";

// ─── Runs ───────────────────────────────────────────────────────────────────────────────

/** Which state database to read. */
export interface StateOptions {
  /** The state database; default `state/runflow.db`. Relative to `cwd`. */
  statePath?: string | undefined;
  /** Default `process.cwd()`. */
  cwd?: string | undefined;
}

/** Reads the state database read-only; `StateStoreError` when there is none at that path. */
async function withStateStore<T>(options: StateOptions, read: (store: StateStore) => Promise<T>): Promise<T> {
  const statePath = resolveStateLocation(
    options.cwd ?? process.cwd(),
    options.statePath ?? DEFAULT_STATE_PATH,
  );
  const store = await openStateStore(statePath, { readonly: true, neverWrite: true });
  try {
    return await read(store);
  } finally {
    await store.close();
  }
}

/** The latest runs, newest first, as `runflow runs` lists them; of one workflow with `workflowName`. */
export async function listRuns(
  options: StateOptions & { limit?: number | undefined; workflowName?: string | undefined } = {},
): Promise<RunRecord[]> {
  return withStateStore(options, (store) =>
    store.runs.list({ limit: options.limit ?? 20, workflowName: options.workflowName }),
  );
}

/** One run by id, or undefined when the database holds none by that id. */
export async function getRun(runId: string, options: StateOptions = {}): Promise<RunRecord | undefined> {
  return withStateStore(options, (store) => store.runs.get(runId));
}

// ─── Ports ──────────────────────────────────────────────────────────────────────────────

/**
 * The state store port (`StateStore`, store/port.ts: async, grouped by use, a write resolves
 * once durable) and its records: what a store of runs, steps, attempts and outputs provides.
 * The store conformance suite (test/store-conformance.ts) says what an adapter must do.
 */
export type * from "./store/port.js";
export type * from "./store/types.js";
/**
 * A run's status as the store keeps it: `running`, or how it ended (`RunOutcome`, which is
 * what the events call `RunStatus`). Named here because both modules export the name.
 */
export type { RunStatus } from "./store/types.js";
/** What the engine needs of the API (`EngineApi`) and of local processes; the HTTP transport under the client. */
export type { DownloadFunction, EngineApi, ProcessRunner } from "./engine/deps.js";
export type { HttpTransport } from "./api/http.js";
/** The RunComfy Model API client, the engine's default `EngineApi`. */
export { RunComfyClient } from "./api/client.js";
export { createClientFromEnv } from "./api/env.js";
/** The models runflow knows (built-in schemas plus `models` folders). */
export { loadModelRegistry, type ModelRegistry } from "./models/registry.js";
export type { ModelEntry } from "./models/types.js";
export type { Workflow, WorkflowCheck };
export type { Plan, PlannedStep } from "./plan/types.js";

// ─── The emulator ───────────────────────────────────────────────────────────────────────

/**
 * Starts runflow's local RunComfy-compatible emulator (docs/emulator.md) on 127.0.0.1: for
 * trying a workflow without a token and without paying. Loaded only when called.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const emulator = await import("./emulator/index.js");
  return emulator.startEmulator(options);
}
export type { EmulatorOptions, RunningEmulator } from "./emulator/index.js";

/**
 * The `api` of an apply against a running emulator: any token does, and runs on it are
 * recorded under one origin whatever its port, so they reuse each other as `--emulator` does.
 */
export function emulatorApi(emulator: Pick<RunningEmulator, "url">): ApiTarget {
  return { baseUrl: emulator.url, token: "emulator", origin: EMBEDDED_EMULATOR_ORIGIN };
}
