/**
 * Where a cluster's queues live, chosen by URL (SPEC §10): BullMQ's PostgreSQL backend for a
 * `postgres://` URL (by default the state's own database, schema `bullmq`), or its Redis
 * backend for `redis://` / `rediss://` (TLS), through ioredis. Only the queues move to
 * Redis: runs, steps, attempts and their fence, workers and the account's request slots
 * stay in the PostgreSQL state either way. See docs/decisions.md "Redis for the queues".
 *
 * Every process of a cluster must be given the same queue URL: a worker only sees the jobs
 * of the queues it was pointed at.
 */
import { createPostgresBackend, createRedisBackend, type Job, type WorkerOptions, withBackend } from "bullmq";
import { UsageError } from "../errors.js";
import { describeQueueLocation } from "./queue-location.js";
import type { StepJob } from "./queues.js";

export type QueueBackendKind = "postgres" | "redis";

/** What the cluster uses of a BullMQ queue (the apply's side: adds and takes back jobs). */
export interface StepQueue {
  add(name: string, data: StepJob, opts: object): Promise<unknown>;
  /**
   * Adds several jobs in one statement (PostgreSQL) or one round trip (Redis); a job whose
   * id is queued already is left as it is, as `add` leaves it.
   */
  addBulk(jobs: { name: string; data: StepJob; opts: object }[]): Promise<unknown>;
  /** The job of that id while it is queued, taken or delayed (undefined once it is gone). */
  getJob(jobId: string): Promise<QueuedJob | undefined>;
  remove(jobId: string): Promise<number>;
  close(): Promise<void>;
}

/** What the cluster uses of a job in a queue. */
export interface QueuedJob {
  /** `lifo`: to the head of its queue (when waiting), the next one handed out. */
  changePriority(opts: { priority?: number; lifo?: boolean }): Promise<void>;
}

/** What the cluster uses of a BullMQ worker. */
export interface StepQueueWorker {
  close(): Promise<void>;
  waitUntilReady(): Promise<unknown>;
  on(event: "error", listener: () => void): unknown;
  /** This worker's stalled check moved the job of a dead worker back to waiting. */
  on(event: "stalled", listener: (jobId: string) => void): unknown;
}

export type StepProcessor = (job: Job<StepJob>, token?: string) => Promise<string>;

/** The queues at one URL. */
export interface QueueBackend {
  readonly kind: QueueBackendKind;
  /** The URL without its password: what messages may show. */
  readonly description: string;
  openQueue(name: string): StepQueue;
  openWorker(
    name: string,
    processor: StepProcessor,
    options: Pick<WorkerOptions, "concurrency" | "lockDuration" | "stalledInterval" | "maxStalledCount">,
  ): StepQueueWorker;
  /**
   * Connects once and lets go: an unreachable server (or a refused password) is one
   * UsageError saying what to do, before anything is recorded. BullMQ itself would keep
   * retrying the connection instead of saying so.
   */
  check(): Promise<void>;
}

/** How long the check waits for the server to answer. */
const CHECK_TIMEOUT_MS = 5_000;

const QUEUE_URL_FORMS =
  "postgres://USER@HOST[:PORT]/DATABASE, or redis://[USER:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS)";

/** Which backend a queue URL names, or undefined for any other scheme. */
export function queueBackendKind(url: string): QueueBackendKind | undefined {
  if (/^postgres(ql)?:\/\//i.test(url)) return "postgres";
  if (/^rediss?:\/\//i.test(url)) return "redis";
  return undefined;
}

/**
 * The queues at `url`. Any other scheme is a UsageError; `source` says where the URL came
 * from (`--queue`, RUNFLOW_QUEUE) for the message.
 */
export function queueBackend(url: string, source = "--queue (or RUNFLOW_QUEUE)"): QueueBackend {
  const kind = queueBackendKind(url);
  const description = describeQueueLocation(url);
  if (kind === undefined) {
    throw new UsageError(
      `${source} ${description} is not a queue URL: runflow's queues live in PostgreSQL or Redis`,
      {
        hint: `give ${QUEUE_URL_FORMS}; or leave it unset to keep the queues in the state's PostgreSQL database`,
      },
    );
  }
  return kind === "postgres" ? postgresQueues(url, description) : redisQueues(url, description);
}

/** BullMQ on PostgreSQL: its own schema `bullmq`, migrated on first use. */
function postgresQueues(url: string, description: string): QueueBackend {
  const { Queue, Worker } = withBackend(createPostgresBackend);
  const connection = { connectionString: url, migrate: true };
  return {
    kind: "postgres",
    description,
    openQueue: (name) => new Queue<StepJob>(name, { connection }),
    openWorker: (name, processor, options) =>
      new Worker<StepJob>(name, processor, { connection, ...options }),
    check: async () => {
      const { default: pg } = await import("pg");
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CHECK_TIMEOUT_MS });
      client.on("error", () => undefined);
      try {
        await client.connect();
        await client.query("SELECT 1");
      } catch (error) {
        throw unreachable(
          "PostgreSQL",
          description,
          error,
          "check that the server runs and the database exists (createdb NAME)",
        );
      } finally {
        await client.end().catch(() => undefined);
      }
    },
  };
}

/**
 * BullMQ on Redis (6.2 or newer, `maxmemory-policy noeviction`: an evicted key would be a
 * lost step), through ioredis: BullMQ makes its connections from `{ url }` (a worker's
 * blocking one included) and loads ioredis only then.
 */
function redisQueues(url: string, description: string): QueueBackend {
  const { Queue, Worker } = withBackend(createRedisBackend);
  const connection = { url };
  return {
    kind: "redis",
    description,
    openQueue: (name) => new Queue<StepJob>(name, { connection }),
    openWorker: (name, processor, options) =>
      new Worker<StepJob>(name, processor, { connection, ...options }),
    check: async () => {
      const { Redis } = await import("ioredis");
      // One try, no reconnects, no offline queue: an answer or an error within the timeout.
      const client = new Redis(url, {
        lazyConnect: true,
        connectTimeout: CHECK_TIMEOUT_MS,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
      });
      // The socket's own error (ECONNREFUSED, ENOTFOUND, a TLS refusal) says more than the
      // "Connection is closed." that connect() rejects with after it.
      let socketError: unknown;
      client.on("error", (error) => (socketError ??= error));
      try {
        await client.connect();
        await client.ping();
      } catch (error) {
        throw unreachable(
          "Redis",
          description,
          socketError ?? error,
          "start Redis there (redis-server 6.2 or newer), and put its password in the URL if it asks for one",
        );
      } finally {
        client.disconnect();
      }
    },
  };
}

function unreachable(server: string, description: string, cause: unknown, what: string): UsageError {
  const reason = cause instanceof Error && cause.message !== "" ? cause.message : String(cause);
  return new UsageError(
    `cannot reach the ${server} queues at ${description}: ${reason}; nothing was submitted`,
    {
      hint: `${what}; or point --queue (RUNFLOW_QUEUE) at a server every worker and apply can reach: ${QUEUE_URL_FORMS}`,
      cause,
    },
  );
}
