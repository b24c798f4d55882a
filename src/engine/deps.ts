/**
 * What the executor needs from the outside world, injected (DESIGN practices 1 and 9): the
 * API, the state store, models, time, randomness, the event bus, downloads and processes.
 * Tests pass a real emulator-backed client and a real SQLite store, or fakes where a case
 * cannot be produced for real.
 */
import type { RunComfyClient } from "../api/client.js";
import type { DownloadedFile, DownloadOptions } from "../api/download.js";
import type { HttpTransport } from "../api/http.js";
import type { ModelRegistry } from "../models/registry.js";
import type { StateStore } from "../store/port.js";
import type { Clock, Random } from "../util/clock.js";
import type { RunEventSink } from "./events.js";
import type { DispatcherFactory } from "./dispatcher.js";
import type { RunSpending } from "./run-costs.js";
import type { StepPolicy } from "./step-policy.js";

/** The calls the engine makes to the RunComfy API; RunComfyClient is one. */
export type EngineApi = Pick<RunComfyClient, "submit" | "waitForResult" | "cancel"> &
  Partial<Pick<RunComfyClient, "price">>;

export type DownloadFunction = (
  url: string,
  destination: string,
  options: DownloadOptions,
) => Promise<DownloadedFile>;

export interface ProcessRequest {
  /** argv[0] is the program, looked up on PATH; no shell is involved. */
  argv: readonly string[];
  cwd: string;
  /**
   * The step's own variables. The runner sets them over its environment (the real one,
   * app/process-runner.ts: runflow's own without the API token).
   */
  env: Record<string, string>;
  timeoutMs: number;
  /** Aborting kills the process. */
  signal: AbortSignal;
}

export interface ProcessOutcome {
  /** undefined when the process could not start or was killed. */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Killed because `signal` aborted. */
  cancelled: boolean;
  /** Why it failed to start or ended abnormally, in one line (e.g. `ffmpeg: command not found`). */
  failure?: string | undefined;
}

export type ProcessRunner = (request: ProcessRequest) => Promise<ProcessOutcome>;

export interface EngineDeps {
  api: EngineApi;
  store: StateStore;
  registry: ModelRegistry;
  clock: Clock;
  random: Random;
  events: RunEventSink;
  download: DownloadFunction;
  runProcess: ProcessRunner;
  /** Probes media produced at run time (media rules of deferred inputs); default undici (api/http.ts). */
  probe?: HttpTransport | undefined;
  /** What a step does about each error (step-policy.ts); default STEP_POLICY. Tests inject another table. */
  stepPolicy?: StepPolicy | undefined;
  /** Where ready steps go and how concurrency is held (dispatcher.ts); default in-process. */
  dispatcher?: DispatcherFactory | undefined;
}

export interface ExecuteOptions {
  /** Requests in flight at once; default the plan's (the workflow's `concurrency`). */
  concurrency?: number | undefined;
  /** Reuse nothing from earlier runs (the plan was made with `fresh` too). */
  fresh?: boolean | undefined;
  /** Download outputs (default true); `--no-download` records their URLs only. */
  download?: boolean | undefined;
  /** Resubmit steps whose earlier submission may have been created (`--resubmit-unknown`). */
  resubmitUnknown?: boolean | undefined;
  /** Reuse ends after this long (`cache.ttl`); default 6 days. */
  cacheTtlMs?: number | undefined;
  /** Local processes (run steps) at once; default the number of CPUs. */
  processConcurrency?: number | undefined;
  /** Per-model estimates and the budget (SPEC §9); default: no estimates, no budget. */
  costs?: RunSpending | undefined;
}
