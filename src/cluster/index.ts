/**
 * The cluster (SPEC §10), as the composition root builds it for a PostgreSQL state: the
 * apply's dispatcher (cluster-dispatcher.ts) and its own worker (step-worker.ts), on BullMQ
 * queues in the same database or at another URL (queue-backend.ts: PostgreSQL or Redis).
 * `runflow worker` builds a StepWorker the same way.
 */
import os from "node:os";
import pg from "pg";
import type { EngineDeps } from "../engine/deps.js";
import { RunControl } from "../engine/run-control.js";
import type { ClusterPort } from "../engine/use-case-ports.js";
import { clusterDispatcher } from "./cluster-dispatcher.js";
import { queueBackend } from "./queue-backend.js";
import { StepEndNotices } from "./step-end-notices.js";
import { StepWorker } from "./step-worker.js";

export { accountOf, AccountSlots } from "./account-slots.js";
export { ClusterDispatcher, clusterDispatcher } from "./cluster-dispatcher.js";
export { StepWorker, type StepWorkerOptions } from "./step-worker.js";
export { queueBackend, type QueueBackend } from "./queue-backend.js";

/** A worker's default name: its host and process, unique among live workers. */
export function defaultWorkerName(): string {
  return `${os.hostname()}-${process.pid}`;
}

/** The cluster of the PostgreSQL state at `url`, for an apply (or retry) spending from `account`. */
export function clusterPort(options: {
  /** The PostgreSQL URL of the state (the request slots' table). */
  url: string;
  /** Where the queues are (queue-backend.ts), when not in the state's database. */
  queueUrl?: string | undefined;
  account: string;
  /** The API origin of the apply's client (its worker executes only runs made there). */
  apiOrigin: string;
  concurrency?: number | undefined;
}): ClusterPort {
  // A URL of another scheme is refused here: the apply builds this before it records anything.
  const queues = queueBackend(options.queueUrl ?? options.url);
  return {
    // The state's own database answered already; only another location needs the check.
    checkQueues: () => (options.queueUrl === undefined ? Promise.resolve() : queues.check()),
    dispatcher: (store, control) =>
      clusterDispatcher({
        queues,
        store,
        control,
        // Its own session: LISTEN belongs to one.
        endings: new StepEndNotices(() => {
          const client = new pg.Client({ connectionString: options.url });
          client.on("error", () => undefined);
          return client;
        }),
      }),
    startWorker: async (deps: EngineDeps, runControl: RunControl, clientFor) => {
      if (options.concurrency === 0) return { stop: () => Promise.resolve() };
      // The worker's own control: stopping it (once the run is over) must not stop the run.
      const control = new RunControl();
      runControl.onStop((reason) => control.stop(reason));
      // Its request slots' sessions stay open while idle (app/worker.ts says why).
      const pool = new pg.Pool({ connectionString: options.url, max: 4, idleTimeoutMillis: 0 });
      pool.on("error", () => undefined);
      const worker = new StepWorker({
        queues,
        name: `apply-${defaultWorkerName()}`,
        concurrency: options.concurrency ?? 16,
        deps,
        clientFor,
        control,
        account: options.account,
        apiOrigin: options.apiOrigin,
        pool,
      });
      await worker.start();
      return {
        stop: async () => {
          await worker.stop();
          await pool.end();
        },
      };
    },
  };
}
