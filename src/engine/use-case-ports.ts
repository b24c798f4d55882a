/**
 * The ports the use cases (apply, retry, cancel) take, as one object each: everything that
 * touches the world outside the engine — the state store, the API, downloads, local
 * processes, media probes, the model registry, time and randomness. The composition root
 * (src/app/) builds the real ones; tests and library users may pass their own. The engine
 * constructs none of them: no HTTP client, no SQLite, no reading of the environment.
 */
import type { HttpTransport } from "../api/http.js";
import type { ModelRegistry } from "../models/registry.js";
import type { StateStore, StateStoreOpener } from "../store/port.js";
import type { Clock, Random } from "../util/clock.js";
import type { PollPolicy } from "../workflow/index.js";
import type { DownloadFunction, EngineApi, EngineDeps, ProcessRunner } from "./deps.js";
import type { DispatcherFactory } from "./dispatcher.js";
import type { EventBus } from "./events.js";
import type { RunControl } from "./run-control.js";
import type { StepPolicy } from "./step-policy.js";
import type { LockTiming } from "./workflow-lock.js";

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

/**
 * Where a use case's requests go. Both are asked for at the point of the flow where the
 * answer matters, so an error (a base URL runflow refuses, no token) comes when it always
 * came: the origin before the lock, the client once the plan is made.
 */
export interface ApiPort {
  /** What runs at this API record as their API (api/origin.ts); a `UsageError` for a bad base URL. */
  origin(): string;
  /** A client polling as the workflow's `poll` says; a `UsageError` when there is no token. */
  client(settings: { poll: PollPolicy | undefined }): EngineApi;
}

/** Where a use case runs: its folder and the environment templates and the store's redaction read. */
export interface UseCasePlace {
  /** Relative paths (the workflow file, the state database) start here. */
  cwd: string;
  /** What templates read as `env.NAME`; the tokens in it are redacted from the store. */
  env: NodeJS.ProcessEnv;
}

/** A use case's request with its place resolved (the composition root fills in the defaults). */
export type Placed<Request> = Request & UseCasePlace;

/** The ports of `apply` and `retry`. */
export interface RunPorts {
  events: EventBus;
  /** Opens the state store at a location (a file path, or a URL for a networked store). */
  openStore: StateStoreOpener;
  api: ApiPort;
  /** Downloads of outputs; made before the lock, so a bad setting is refused with nothing done. */
  downloads(): DownloadFunction;
  runProcess: ProcessRunner;
  /** The HTTP transport of media probes (preflight and run-time checks). */
  probe: HttpTransport;
  /** The models runflow knows (built-in schemas plus `--models` folders). */
  models(): ModelRegistry;
  clock: Clock;
  random: Random;
  /** Signals and `cancel` stop the run through it; default a control of its own. */
  control?: RunControl | undefined;
  lockTiming?: Partial<LockTiming> | undefined;
  /** Default: a new id from the time and a random suffix. */
  runId?: string | undefined;
  /** What a step does about each error; default STEP_POLICY (tests inject another table). */
  stepPolicy?: StepPolicy | undefined;
  /**
   * Set when the state is shared by several machines (a PostgreSQL state, SPEC §10): the
   * run's steps go to the cluster's queues, and this process works as one of its workers.
   */
  cluster?: ClusterPort | undefined;
}

/** A cluster of workers sharing one state (SPEC §10): what apply and retry need of it. */
export interface ClusterPort {
  /**
   * Connects to the cluster's queues once, before anything is recorded: a queue location
   * that is not one, or that does not answer, is a UsageError (exit 2, nothing submitted).
   */
  checkQueues(): Promise<void>;
  /** The run's dispatcher: its ready steps become jobs, and the run follows them in the store. */
  dispatcher(store: StateStore, control: RunControl): DispatcherFactory;
  /**
   * This process as one more worker, executing steps of any run with these ports; each run's
   * requests through `clientFor` its workflow's `poll` settings.
   */
  startWorker(
    deps: EngineDeps,
    control: RunControl,
    clientFor: (poll: PollPolicy) => EngineApi,
  ): Promise<{ stop(): Promise<void> }>;
}

/** The ports of `cancel`. */
export interface CancelPorts {
  openStore: StateStoreOpener;
  api: ApiPort;
  /**
   * The client is the caller's own (a library user's, a test's): its origin is not checked
   * against the run's, the caller vouches that the run's request ids are its.
   */
  callersApi?: boolean | undefined;
  clock: Clock;
}
