/**
 * A worker of a cluster (SPEC §10): takes steps of any run from the queues and executes them
 * with the engine's step code (engine/worker-run.ts), beating its heartbeat into the store
 * (who is alive, what each does: `status`). `runflow worker` is one; `apply` against a
 * PostgreSQL state runs one too. Stopping hands its unfinished steps back at once: they are
 * moved back to the queue, and the next worker re-attaches to their requests.
 */
import os from "node:os";
import { setTimeout } from "node:timers/promises";
import { DelayedError, type Job } from "bullmq";
import PQueue from "p-queue";
import pg from "pg";
import type { EngineApi, EngineDeps } from "../engine/deps.js";
import type { PollPolicy } from "../workflow/types.js";
import type { RunControl } from "../engine/run-control.js";
import { isTerminal, StepState } from "../engine/states.js";
import { WorkerRun } from "../engine/worker-run.js";
import { AccountSlots, GiveWayToTakeover } from "./account-slots.js";
import type { QueueBackend, StepQueue, StepQueueWorker } from "./queue-backend.js";
import { SlotNotices } from "./slot-notices.js";
import { MODEL_STEPS_QUEUE, RUN_STEPS_QUEUE, STALLED_TUNING, stepJobId, type StepJob } from "./queues.js";

/** How often a worker says it is alive (WORKER_DEAD_AFTER_MS is five of these). */
const HEARTBEAT_MS = 1_000;
/** A step whose attempt a live worker holds without an id yet comes back after this long. */
const BUSY_DELAY_MS = 1_000;
/**
 * A run whose plan is not stored yet is looked for again every this often, in the process, for
 * up to NOT_RECORDED_WAIT_MS — once per run and worker: an apply of an earlier runflow writes
 * the stored plan's own record a few milliseconds after it queued its first steps, and a worker
 * that took one meanwhile went on 100 ms later (the queue's delay) instead of as soon as the
 * record was there. (An apply now writes the record, partial, before its first steps are
 * queued: RunRecorder `openEarly`.)
 */
const NOT_RECORDED_LOOK_MS = 10;
const NOT_RECORDED_WAIT_MS = 2_000;
/** … then a step of it comes back after this long … */
const NOT_RECORDED_DELAY_MS = 100;
/** … for this long after it was queued; then it fails (its apply died before it wrote the plan). */
const NOT_RECORDED_FOR_MS = 10 * 60_000;
/**
 * A delivery that failed (an exception: the state unreachable a moment, a bug) comes back
 * after 0.5 s, doubling up to 30 s; after this many failures in a row in one worker the step
 * ends `failed` with the error (about 3 minutes): its apply learns it instead of waiting.
 */
const FAILED_DELIVERY_FIRST_MS = 500;
const FAILED_DELIVERY_MAX_MS = 30_000;
export const FAILED_DELIVERIES_BEFORE_GIVING_UP = 10;

export interface StepWorkerOptions {
  /** Where the queues are (PostgreSQL or Redis); the state is `deps.store`. */
  queues: QueueBackend;
  /** Unique among live workers. */
  name: string;
  /** Model steps at once (each holds at most one request). */
  concurrency: number;
  /** Run steps (local programs) at once; default the CPUs. */
  processConcurrency?: number | undefined;
  /** The engine's ports; `store` is the shared PostgreSQL state. */
  deps: EngineDeps;
  /** Each run's client, polling as its workflow says (engine/worker-run.ts); default `deps.api`. */
  clientFor?: ((poll: PollPolicy) => EngineApi) | undefined;
  control: RunControl;
  /** The account the token spends from (account-slots.ts `accountOf`). */
  account: string;
  /**
   * The API origin its client talks to: a step of a run made at another API is handed back
   * for a worker of that API (a request is never made, nor polled, where its run was not).
   */
  apiOrigin: string;
  /** For the request slots' table. */
  pool: pg.Pool;
  /** Told of each delivery's end (tests, the worker's log). */
  onStep?: ((job: StepJob, outcome: string) => void) | undefined;
}

export class StepWorker {
  readonly #options: StepWorkerOptions;
  readonly #runs = new Map<string, Promise<WorkerRun | undefined>>();
  /** Runs whose stored plan this worker waited for in vain (a dead apply's): not waited for again. */
  readonly #waitedFor = new Set<string>();
  readonly #doing = new Set<string>();
  readonly #processes: PQueue;
  readonly #startedAt: number;
  /** Freed request slots, heard once for every run this worker executes. */
  readonly #slotNotices: SlotNotices;
  /** Deliveries of a step that failed in a row here (by job id), for their backoff. */
  readonly #failures = new Map<string, number>();
  #workers: StepQueueWorker[] = [];
  /** The queues this worker moved a stalled job in (opened at the first one: rare). */
  readonly #stalledQueues = new Map<string, StepQueue>();
  #heartbeat: NodeJS.Timeout | undefined;
  #stopping = false;

  constructor(options: StepWorkerOptions) {
    this.#options = options;
    this.#processes = new PQueue({
      concurrency: options.processConcurrency ?? Math.max(1, os.availableParallelism()),
    });
    this.#startedAt = options.deps.clock.now();
    // Its own session (LISTEN belongs to one), made as the pool makes its clients.
    this.#slotNotices = new SlotNotices(() => {
      const client = new pg.Client(options.pool.options);
      client.on("error", () => undefined);
      return client;
    });
  }

  get name(): string {
    return this.#options.name;
  }

  /** Says it is alive, then takes steps. */
  async start(): Promise<void> {
    await this.#beat();
    // Connected before the first step rather than on it: the first slot of a run would wait
    // for the listening session and a pooled session to be set up (≈ 0.1 s measured).
    await Promise.all([this.#slotNotices.listen(), connectAhead(this.#options.pool)]);
    this.#heartbeat = setInterval(() => void this.#beat().catch(() => undefined), HEARTBEAT_MS);
    this.#heartbeat.unref();
    const processor = (job: Job<StepJob>, token?: string) => this.#process(job, token);
    const { queues } = this.#options;
    this.#workers = [
      queues.openWorker(MODEL_STEPS_QUEUE, processor, {
        concurrency: this.#options.concurrency,
        ...STALLED_TUNING,
      }),
      queues.openWorker(RUN_STEPS_QUEUE, processor, {
        concurrency: this.#options.processConcurrency ?? Math.max(1, os.availableParallelism()),
        ...STALLED_TUNING,
      }),
    ];
    const names = [MODEL_STEPS_QUEUE, RUN_STEPS_QUEUE];
    this.#workers.forEach((worker, index) => {
      worker.on("error", () => undefined);
      worker.on("stalled", (jobId) => void this.#toHead(names[index]!, jobId).catch(() => undefined));
    });
    await Promise.all(this.#workers.map((worker) => worker.waitUntilReady()));
  }

  /**
   * Stops: the run control was told to stop already (interrupt), so the steps in hand end
   * `left` and go back to the queue; then the worker leaves.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (!this.#options.control.stopped) this.#options.control.stop("interrupted");
    await Promise.all(this.#workers.map((worker) => worker.close()));
    await Promise.all([...this.#stalledQueues.values()].map((queue) => queue.close().catch(() => undefined)));
    clearInterval(this.#heartbeat);
    await Promise.all([...this.#runs.values()].map(async (run) => (await run)?.settled()));
    await this.#options.deps.store.workers.leave(this.#options.name).catch(() => undefined);
    await this.#slotNotices.close();
  }

  /**
   * A job this worker's stalled check gave back (its worker died) goes to the head of its
   * queue: BullMQ's PostgreSQL backend queues it again behind every job added since — a dead
   * worker's run step behind every ffmpeg step queued meanwhile, a re-attachment behind new
   * submissions — though its step was begun first. (`lifo` on a waiting job: the next one
   * handed out.)
   */
  async #toHead(queueName: string, jobId: string): Promise<void> {
    let queue = this.#stalledQueues.get(queueName);
    if (!queue) {
      queue = this.#options.queues.openQueue(queueName);
      this.#stalledQueues.set(queueName, queue);
    }
    await (await queue.getJob(jobId))?.changePriority({ lifo: true });
  }

  async #process(job: Job<StepJob>, token: string | undefined): Promise<string> {
    const { runId, address } = job.data;
    const doing = `${runId} ${address}`;
    this.#doing.add(doing);
    let outcome: string;
    let delayMs: number;
    try {
      const run = await this.#run(runId);
      if (run) {
        outcome = run.apiOrigin === this.#options.apiOrigin ? await run.execute(address) : "elsewhere";
      } else if (Date.now() - job.timestamp < NOT_RECORDED_FOR_MS) {
        // An apply of an earlier runflow hands out its first steps before it writes the stored
        // plan's own record (RunRecorder.finish): a fast queue delivers them sooner. Asked again
        // shortly; a failed job would be a step lost, its run followed forever.
        outcome = "not_recorded_yet";
      } else {
        throw new Error(`run ${runId} is not in the state (or has no stored plan)`);
      }
      this.#failures.delete(stepJobId(job.data));
      delayMs = backInQueueFor(outcome, this.#stopping);
    } catch (error) {
      if (error instanceof GiveWayToTakeover) {
        // Its place goes to the delivery that re-attaches to a dead worker's request.
        outcome = "gave_way";
        delayMs = backInQueueFor(outcome, this.#stopping);
      } else {
        // Never a failed job: BullMQ would drop it (removeOnFail) and the step stay pending,
        // its apply following it for ever. It comes back later, or ends failed (above).
        ({ outcome, delayMs } = await this.#deliveryFailed(job.data, error));
      }
    } finally {
      this.#doing.delete(doing);
    }
    this.#options.onStep?.(job.data, outcome);
    if (outcome === "done") return outcome;
    await job.moveToDelayed(Date.now() + delayMs, token);
    throw new DelayedError();
  }

  /**
   * A delivery threw: delivered again after a backoff; after FAILED_DELIVERIES_BEFORE_GIVING_UP
   * in a row the step ends `failed` with the error, unless it ended meanwhile. When even that
   * write fails (the state is gone), the job still comes back.
   */
  async #deliveryFailed(job: StepJob, error: unknown): Promise<{ outcome: string; delayMs: number }> {
    const id = stepJobId(job);
    const failures = (this.#failures.get(id) ?? 0) + 1;
    const delayMs = Math.min(FAILED_DELIVERY_MAX_MS, FAILED_DELIVERY_FIRST_MS * 2 ** (failures - 1));
    const reason = error instanceof Error ? error.message : String(error);
    if (failures < FAILED_DELIVERIES_BEFORE_GIVING_UP) {
      this.#failures.set(id, failures);
      return { outcome: `error: ${reason}`, delayMs };
    }
    try {
      const { store, clock } = this.#options.deps;
      const record = await store.steps.get(job.runId, job.address);
      if (record && !isTerminal(record.state)) {
        const now = clock.now();
        await store.steps.update(job.runId, job.address, {
          updatedAt: now,
          state: StepState.failed,
          finishedAt: now,
          error: `worker ${this.#options.name} could not execute the step (${failures} tries in a row): ${reason}; \`runflow retry\` runs it again`,
        });
      }
      this.#failures.delete(id);
      return { outcome: "done", delayMs: 0 };
    } catch {
      this.#failures.set(id, failures);
      return { outcome: `error: ${reason}`, delayMs };
    }
  }

  #run(runId: string): Promise<WorkerRun | undefined> {
    let run = this.#runs.get(runId);
    if (!run) {
      run = this.#openWhenRecorded(runId);
      // A run not found now may be recorded a moment later: asked again next time.
      void run.then(
        (found) => found ?? this.#runs.delete(runId),
        () => this.#runs.delete(runId),
      );
      this.#runs.set(runId, run);
    }
    return run;
  }

  /**
   * Opens the run; one whose plan is not stored yet is looked for again shortly, in the
   * process, the first time only (the deliveries of the run that arrive meanwhile share the
   * wait). A run still not there after NOT_RECORDED_WAIT_MS is undefined, as at once later.
   */
  async #openWhenRecorded(runId: string): Promise<WorkerRun | undefined> {
    const waitUntil = Date.now() + (this.#waitedFor.has(runId) ? 0 : NOT_RECORDED_WAIT_MS);
    for (;;) {
      const run = await this.#open(runId);
      if (run) {
        this.#waitedFor.delete(runId);
        return run;
      }
      if (this.#stopping || Date.now() >= waitUntil) break;
      await setTimeout(NOT_RECORDED_LOOK_MS);
    }
    this.#waitedFor.add(runId);
    return undefined;
  }

  #open(runId: string): Promise<WorkerRun | undefined> {
    return WorkerRun.open(runId, {
      deps: this.#options.deps,
      clientFor: this.#options.clientFor,
      worker: this.#options.name,
      control: this.#options.control,
      processes: this.#processes,
      requestSlots: (caps) =>
        new AccountSlots({
          pool: this.#options.pool,
          notices: this.#slotNotices,
          account: this.#options.account,
          worker: this.#options.name,
          ...caps,
        }),
    });
  }

  #beat(): Promise<void> {
    return this.#options.deps.store.workers.beat({
      name: this.#options.name,
      host: os.hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      seenAt: this.#options.deps.clock.now(),
      doing: [...this.#doing],
    });
  }
}

/**
 * How long a step handed back waits in the queue: none when this worker stops or hands it
 * back, a little while another worker holds it (or another API's worker should take it) or
 * while a dead worker's request awaits its takeover, a moment while its run's plan is not
 * stored yet.
 */
function backInQueueFor(outcome: string, stopping: boolean): number {
  if (stopping) return 0;
  if (outcome === "busy" || outcome === "elsewhere" || outcome === "gave_way") return BUSY_DELAY_MS;
  if (outcome === "not_recorded_yet") return NOT_RECORDED_DELAY_MS;
  return 0;
}

/**
 * Opens the pool's sessions at once and gives them back, idle: the request slots' first
 * transactions find them ready. A failure is left to the first slot to report.
 */
async function connectAhead(pool: pg.Pool): Promise<void> {
  const clients = await Promise.all(
    Array.from({ length: pool.options.max ?? 1 }, () => pool.connect().catch(() => undefined)),
  );
  for (const client of clients) client?.release();
}
