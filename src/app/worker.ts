/**
 * `runflow worker`'s composition (SPEC §10): the real adapters a worker executes steps with —
 * the PostgreSQL state, the RunComfy client of this environment's token (or a given API
 * target), downloads, local processes, the media probe, the model registry — and a
 * StepWorker over them. The cluster's modules are loaded only here and for an apply on a
 * PostgreSQL state.
 */
import pg from "pg";
import { RunComfyClient } from "../api/client.js";
import { readApiToken } from "../api/env.js";
import { retryingTransport } from "../api/probe-transport.js";
import type { EngineApi } from "../engine/deps.js";
import type { RunEventSink } from "../engine/events.js";
import { RunControl } from "../engine/run-control.js";
import type { ApiTarget } from "../engine/use-case-ports.js";
import { UsageError } from "../errors.js";
import { loadModelRegistry } from "../models/registry.js";
import { isPostgresLocation } from "../store/location.js";
import { tokensFromEnvironment } from "../store/redact.js";
import { systemClock } from "../util/clock.js";
import { apiOriginFor } from "./api-target.js";
import { openStateStore } from "./open-store.js";
import { cappedDownloads, clientPollPolicy } from "./ports.js";
import type { PollPolicy } from "../workflow/types.js";
import { runProcess } from "./process-runner.js";

export interface WorkerRequest {
  /** The PostgreSQL URL of the shared state. */
  state: string;
  /** Where the queues are, when not in the state's database: postgres://… or redis://… (rediss://). */
  queue?: string | undefined;
  name: string;
  concurrency: number;
  processConcurrency?: number | undefined;
  /** The API to use instead of the environment's (tests: the emulator). */
  api?: ApiTarget | undefined;
  models?: readonly string[] | undefined;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Hears the steps' events (the worker's log). */
  events: RunEventSink;
  /** Told of each delivery's end. */
  onStep?: ((job: { runId: string; address: string }, outcome: string) => void) | undefined;
}

export interface RunningWorker {
  readonly name: string;
  /** Where its queues are (the URL without its password). */
  readonly queues: string;
  /** Hands the unfinished steps back to the queue, leaves, and closes the state. */
  stop(): Promise<void>;
}

/** Starts a worker of the cluster whose state is at `request.state`. */
export async function startWorker(request: WorkerRequest): Promise<RunningWorker> {
  if (!isPostgresLocation(request.state)) {
    throw new UsageError(
      `runflow worker needs a shared state: --state ${request.state} is not a postgres:// URL`,
      {
        hint: "start PostgreSQL, then: runflow worker --state postgres://USER@HOST:PORT/DB (or RUNFLOW_STATE=postgres://…)",
      },
    );
  }
  const token = request.api?.token ?? readApiToken(request.env) ?? "";
  if (token === "") {
    throw new UsageError("no RunComfy API token: RUNCOMFY_API_TOKEN is not set", {
      hint: "export RUNCOMFY_API_TOKEN=<your API key> on every worker's machine",
    });
  }
  const baseUrl = request.api?.baseUrl ?? (request.env.RUNCOMFY_BASE_URL?.trim() || undefined);
  const clock = systemClock;
  // Each run's requests are polled as its workflow says (`defaults.poll`), as on one machine.
  const clientFor = (poll: PollPolicy | undefined): EngineApi =>
    new RunComfyClient({
      token,
      ...(baseUrl ? { baseUrl } : {}),
      poll: clientPollPolicy(poll),
      clock,
      random: Math.random,
    });
  const api = clientFor(undefined);
  const { StepWorker, accountOf, queueBackend } = await import("../cluster/index.js");
  // Another scheme is refused before anything is opened; another server is asked once.
  const queues = queueBackend(request.queue ?? request.state);
  const store = await openStateStore(request.state, { secrets: tokensFromEnvironment(request.env) });
  if (request.queue !== undefined) {
    try {
      await queues.check();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
  }
  // The request slots' sessions stay open while idle: a worker waits between runs, and a run's
  // first slots should not wait for sessions to be set up.
  const pool = new pg.Pool({ connectionString: request.state, max: 4, idleTimeoutMillis: 0 });
  pool.on("error", () => undefined);
  const control = new RunControl();
  const worker = new StepWorker({
    queues,
    name: request.name,
    concurrency: request.concurrency,
    processConcurrency: request.processConcurrency,
    deps: {
      api,
      store,
      registry: loadModelRegistry({ dirs: [...(request.models ?? [])], cwd: request.cwd }),
      clock,
      random: Math.random,
      events: request.events,
      download: cappedDownloads(request.env),
      runProcess,
      probe: retryingTransport({ clock, random: Math.random }),
    },
    clientFor,
    control,
    account: accountOf(apiOriginFor({ api: request.api, env: request.env }), token),
    apiOrigin: apiOriginFor({ api: request.api, env: request.env }),
    pool,
    onStep: request.onStep,
  });
  try {
    await worker.start();
  } catch (error) {
    await pool.end().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }
  return {
    name: request.name,
    queues: queues.description,
    stop: async () => {
      await worker.stop();
      await pool.end().catch(() => undefined);
      await store.close();
    },
  };
}
