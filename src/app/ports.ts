/**
 * The real adapters of the use cases' ports (engine/use-case-ports.ts), built from a
 * request and what its caller brought: the RunComfy client (its token read here, from the
 * environment, and nowhere in the engine), downloads capped by RUNFLOW_MAX_DOWNLOAD_MB, the
 * local process runner, the retrying media probe, the model registry, the system clock.
 * Anything the caller passes in `services` is used instead.
 */
import { RunComfyClient, type RetryOptions } from "../api/client.js";
import { downloadFile, maxBytesFromEnvironment } from "../api/download.js";
import { createClientFromEnv, readApiToken } from "../api/env.js";
import { retryingTransport } from "../api/probe-transport.js";
import { DEFAULT_POLL_POLICY, type PollPolicy as ClientPollPolicy } from "../api/retry-policy.js";
import type { DownloadFunction, EngineApi, ProcessRunner } from "../engine/deps.js";
import type { EventBus } from "../engine/events.js";
import type { RunControl } from "../engine/run-control.js";
import type { StepPolicy } from "../engine/step-policy.js";
import type {
  ApiPort,
  ApiTarget,
  CancelPorts,
  ClusterPort,
  Placed,
  RunPorts,
} from "../engine/use-case-ports.js";
import { stateLocation } from "../engine/store-session.js";
import { isPostgresLocation } from "../store/location.js";
import type { LockTiming } from "../engine/workflow-lock.js";
import { UsageError } from "../errors.js";
import { loadModelRegistry } from "../models/registry.js";
import type { StateStore, StateStoreOpener } from "../store/port.js";
import { systemClock, type Clock, type Random } from "../util/clock.js";
import type { PollPolicy } from "../workflow/index.js";
import { apiOriginFor } from "./api-target.js";
import { openStateStore } from "./open-store.js";
import { runProcess } from "./process-runner.js";

/** What a caller of `apply` or `retry` brings; everything but `events` has a real default. */
export interface ApplyServices {
  events: EventBus;
  /** Signals and `cancel` stop the run through it. */
  control?: RunControl | undefined;
  /**
   * A state store the caller opened (any `StateStore` implementation): the use case runs on
   * it and leaves it open — closing it, and redacting what it keeps, are the caller's.
   */
  store?: StateStore | undefined;
  /** Opens the state store at `statePath`; default `openStateStore` (SQLite). Ignored with `store`. */
  openStore?: StateStoreOpener | undefined;
  /** Replaces the RunComfy client altogether (a library user's own, engine tests). */
  api?: EngineApi | undefined;
  clock?: Clock | undefined;
  random?: Random | undefined;
  /** Under the RunComfy client and the media probes (tests put faults in front of the network). */
  fetch?: typeof fetch | undefined;
  runProcess?: ProcessRunner | undefined;
  lockTiming?: Partial<LockTiming> | undefined;
  /** Retries of single API calls (tests make them quick). */
  apiRetry?: RetryOptions | undefined;
  /** Default: a new id from the time and a random suffix. */
  runId?: string | undefined;
  /** What a step does about each error; default STEP_POLICY (tests inject another table). */
  stepPolicy?: StepPolicy | undefined;
}

/** What a caller of `cancel` brings. */
export interface CancelServices {
  /** As `ApplyServices.store`. */
  store?: StateStore | undefined;
  openStore?: StateStoreOpener | undefined;
  /** The client that cancels the run's queued requests; default the environment's RunComfy client. */
  api?: EngineApi | undefined;
  clock?: Clock | undefined;
}

/** The store opener of a use case: the caller's open store (lent, never closed here), else an opener. */
function storeOpener(services: { store?: StateStore | undefined; openStore?: StateStoreOpener | undefined }) {
  const { store } = services;
  if (!store) return services.openStore ?? openStateStore;
  const lent: StateStore = {
    runs: store.runs,
    steps: store.steps,
    attempts: store.attempts,
    outputs: store.outputs,
    locks: store.locks,
    workers: store.workers,
    history: store.history,
    budgets: store.budgets,
    // Every write already resolved once durable (the port's promise): nothing to wait for.
    close: () => Promise.resolve(),
  };
  return () => Promise.resolve(lent);
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

/** The API of an apply or retry: the target given (the emulator) or the environment's, or the caller's client. */
function runApi(
  request: Placed<{ api?: ApiTarget | undefined }>,
  services: ApplyServices,
  clock: Clock,
  random: Random,
): ApiPort {
  return {
    origin: () => apiOriginFor(request),
    client: ({ poll }) => {
      if (services.api) return services.api;
      const target = request.api ?? {
        token: readApiToken(request.env) ?? "",
        baseUrl: request.env.RUNCOMFY_BASE_URL?.trim() || undefined,
      };
      if (target.token === "") {
        throw new UsageError("no RunComfy API token: RUNCOMFY_API_TOKEN is not set", {
          hint: "export RUNCOMFY_API_TOKEN=<your API key>, or try runflow without an account: `runflow apply FILE --emulator`",
        });
      }
      return new RunComfyClient({
        token: target.token,
        ...(target.baseUrl ? { baseUrl: target.baseUrl } : {}),
        poll: clientPollPolicy(poll),
        clock,
        random,
        ...(services.fetch ? { fetch: services.fetch } : {}),
        ...(services.apiRetry ? { retry: services.apiRetry } : {}),
      });
    },
  };
}

/** Downloads capped by RUNFLOW_MAX_DOWNLOAD_MB (read when asked for: a bad value is refused before the lock). */
export function cappedDownloads(env: NodeJS.ProcessEnv): DownloadFunction {
  const maxBytes = maxBytesFromEnvironment(env);
  // A caller's own cap (an input capture's) only lowers RUNFLOW_MAX_DOWNLOAD_MB's.
  return (url, destination, options) =>
    downloadFile(url, destination, {
      ...options,
      maxBytes: Math.min(maxBytes, options.maxBytes ?? maxBytes),
    });
}

/** The ports of `apply` and `retry`. */
export function runPorts(
  request: Placed<{
    api?: ApiTarget | undefined;
    models?: readonly string[] | undefined;
    statePath?: string | undefined;
    concurrency?: number | undefined;
  }>,
  services: ApplyServices,
): RunPorts {
  const clock = services.clock ?? systemClock;
  const random = services.random ?? Math.random;
  return {
    events: services.events,
    control: services.control,
    openStore: storeOpener(services),
    api: runApi(request, services, clock, random),
    downloads: () => cappedDownloads(request.env),
    runProcess: services.runProcess ?? runProcess,
    probe: retryingTransport({ fetch: services.fetch, clock, random }),
    models: () => loadModelRegistry({ dirs: [...(request.models ?? [])], cwd: request.cwd }),
    clock,
    random,
    lockTiming: services.lockTiming,
    runId: services.runId,
    stepPolicy: services.stepPolicy,
    cluster: clusterOf(request),
  };
}

/**
 * Model steps an apply on a PostgreSQL state executes itself (RUNFLOW_APPLY_WORKER_CONCURRENCY,
 * default 16); 0: it only follows the run, the workers execute every step.
 */
function ownWorkerConcurrency(env: NodeJS.ProcessEnv): number {
  const text = env.RUNFLOW_APPLY_WORKER_CONCURRENCY?.trim();
  const given = Number(text);
  return text && Number.isInteger(given) && given >= 0 ? given : 16;
}

/**
 * On a PostgreSQL state the run's steps go to the cluster (SPEC §10); a SQLite state runs
 * them in this process. The account the request slots are counted in is the API origin and a
 * digest of the token.
 */
function clusterOf(
  request: Placed<{
    api?: ApiTarget | undefined;
    statePath?: string | undefined;
    concurrency?: number | undefined;
  }>,
): ClusterPort | undefined {
  const location = stateLocation(request.statePath, request.cwd);
  if (!isPostgresLocation(location)) return undefined;
  const token = request.api?.token ?? readApiToken(request.env) ?? "";
  // Loaded only here: a SQLite apply never loads BullMQ or pg (docs/decisions.md "Start-up").
  let loaded: ClusterPort | undefined;
  const cluster = async (): Promise<ClusterPort> => {
    const { accountOf, clusterPort } = await import("../cluster/index.js");
    loaded ??= clusterPort({
      url: location,
      // The queues' location (PostgreSQL or Redis), when not the state's database.
      queueUrl: request.env.RUNFLOW_QUEUE?.trim() || undefined,
      account: accountOf(apiOriginFor(request), token),
      apiOrigin: apiOriginFor(request),
      concurrency: ownWorkerConcurrency(request.env),
    });
    return loaded;
  };
  // Checked once: apply starts it while its preflight probes, the run takes the verdict.
  let checked: Promise<void> | undefined;
  return {
    checkQueues: () => (checked ??= cluster().then((port) => port.checkQueues())),
    startWorker: async (deps, control, clientFor) => (await cluster()).startWorker(deps, control, clientFor),
    dispatcher: (store, control) => {
      if (!loaded) throw new Error("the cluster's dispatcher is built after this process's worker started");
      return loaded.dispatcher(store, control);
    },
  };
}

/** The ports of `cancel`: the environment's API (a cancel never runs on a given target). */
export function cancelPorts(request: Placed<object>, services: CancelServices): CancelPorts {
  return {
    openStore: storeOpener(services),
    api: {
      origin: () => apiOriginFor({ env: request.env }),
      client: () => services.api ?? createClientFromEnv({ env: request.env }),
    },
    callersApi: services.api !== undefined,
    clock: services.clock ?? systemClock,
  };
}
