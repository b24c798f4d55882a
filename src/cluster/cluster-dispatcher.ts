/**
 * The cluster adapter of the Dispatcher port, on the apply's side (SPEC §10): a ready step
 * becomes a job `runId + address` on the model or run steps' queue, and the apply follows it
 * in the store — every state another process writes is told to the views (RemoteSteps'
 * `observe`), and its ending releases or blocks its dependents as in one process. The caps
 * are not held here: each worker takes a request slot account-wide (account-slots.ts).
 *
 * The steps handed out in one turn of the event loop (a slice's ready steps, a wave's
 * dependents) go to their queue as one bulk add: one statement instead of one round trip and
 * commit each, so the twentieth step is queued as soon as the first (BatchedAdds below).
 *
 * The apply reads its run's steps from the store a few times a second while steps are out:
 * one query, whichever process executes each, for the steps written since its last read
 * (`steps.changedSince`), so a quiet 100,000-step run costs a few rows a read, not all of them.
 * A step's ending is also announced (step-end-notices.ts): the apply then reads at once, so
 * it learns that its run's last step ended within milliseconds instead of up to a read later.
 *
 * A queue may lose its jobs while the state keeps its steps: a Redis restarted empty (it
 * keeps them in memory; the queues on PostgreSQL live and die with the state). At each read of
 * every step, the apply looks for the jobs of a few of the steps no worker has begun, and when
 * one is gone, queues every such step again: a job still there is left as it is (its id), so
 * nothing runs twice, and a step lost is not followed for ever.
 */
import { channel } from "node:diagnostics_channel";
import PQueue from "p-queue";
import type { PlannedStep } from "../plan/types.js";
import type { StepEnding } from "../engine/context.js";
import type {
  DispatchedRun,
  Dispatcher,
  ObservedStep,
  ReadyStep,
  RequestSlots,
  RemoteSteps,
} from "../engine/dispatcher.js";
import type { RunControl } from "../engine/run-control.js";
import { isSuccess, isTerminal } from "../engine/states.js";
import type { StateStore, StepChangeCursor } from "../store/port.js";
import type { StepRecord } from "../store/types.js";
import type { QueueBackend, StepQueue } from "./queue-backend.js";
import { MODEL_STEPS_QUEUE, RUN_STEPS_QUEUE, stepJobId, type StepJob } from "./queues.js";
import type { StepEndNotices } from "./step-end-notices.js";

/** How often the apply reads its run's steps while some are out. */
const FOLLOW_EVERY_MS = 200;
/**
 * At most this long after the last read of every step, one reads every step again instead of
 * the changes: a safety net, should a step be followed only after its last write was read past.
 */
const WHOLE_READ_EVERY_MS = 5_000;
/**
 * A step's end notice reads at once, unless a read started less than this long ago: then it
 * reads this long after that one. A wave's 20 endings come within a fraction of a second,
 * while the workers start the next wave on the same cores: a few reads for them, not 20.
 */
const NOTICE_READ_GAP_MS = 30;

interface Followed {
  observe: (step: ObservedStep) => void;
  resolve: (ending: StepEnding) => void;
  seen: string;
  /** Its state as last read. */
  state: string;
}

/** How many of the steps no worker has begun are looked for in their queue at a whole read. */
const LOOKED_FOR_AT_WHOLE_READ = 20;
/** The states of a step handed out that no worker has begun (or one gave back): its job waits. */
const NOT_BEGUN = new Set(["pending", "waiting"]);

/**
 * Told once per process, when its first steps are queued: the CLI's entry (scripts/cli-entry.cjs)
 * then writes its pack — what a command loaded before its first work left — as it does at a
 * first submission. An apply that only follows a cluster's run never submits.
 */
const FIRST_STEPS_QUEUED = channel("runflow:first-steps-queued");
let stepsQueued = false;

/** The most jobs one bulk add carries (a 1,000-step slice is one statement). */
const MOST_JOBS_PER_ADD = 1_000;

/**
 * Jobs for one queue, gathered while the event loop turns and added together at its end:
 * each caller's promise settles with its batch's add.
 */
class BatchedAdds {
  readonly #queue: StepQueue;
  #batch: { job: StepJob; done: { resolve: () => void; reject: (error: unknown) => void } }[] = [];

  constructor(queue: StepQueue) {
    this.#queue = queue;
  }

  add(job: StepJob): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#batch.length === 0) queueMicrotask(() => void this.#flush());
      this.#batch.push({ job, done: { resolve, reject } });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#batch;
    this.#batch = [];
    for (let start = 0; start < batch.length; start += MOST_JOBS_PER_ADD) {
      const part = batch.slice(start, start + MOST_JOBS_PER_ADD);
      try {
        // The job id makes a step queued twice one job (stepJobId), in bulk as one by one.
        await this.#queue.addBulk(
          part.map(({ job }) => ({
            name: "step",
            data: job,
            opts: { jobId: stepJobId(job), removeOnComplete: true, removeOnFail: true },
          })),
        );
        for (const { done } of part) done.resolve();
        if (!stepsQueued) {
          stepsQueued = true;
          FIRST_STEPS_QUEUED.publish(undefined);
        }
      } catch (error) {
        for (const { done } of part) done.reject(error);
      }
    }
  }
}

/** Requests are capped where they are made (the workers): nothing to hold here. */
const NO_SLOTS: RequestSlots = { run: (_model, task) => task(() => undefined) };

export interface ClusterDispatcherOptions {
  /** Where the queues are (PostgreSQL or Redis). */
  queues: QueueBackend;
  /** The shared PostgreSQL state the run is followed in. */
  store: StateStore;
  control: RunControl;
  /** Announces the run's step endings: each is read at once (without it, the reads alone). */
  endings?: StepEndNotices | undefined;
  /** How often the run is read while steps are out (default FOLLOW_EVERY_MS; tests lengthen it). */
  followEveryMs?: number | undefined;
}

export class ClusterDispatcher implements Dispatcher, RemoteSteps {
  readonly requests = NO_SLOTS;
  readonly processes = new PQueue();
  readonly remote: RemoteSteps = this;
  readonly #runId: string;
  readonly #store: StateStore;
  readonly #control: RunControl;
  readonly #queues: { model: StepQueue; run: StepQueue };
  readonly #adds: { model: BatchedAdds; run: BatchedAdds };
  readonly #ready: ReadyStep[] = [];
  readonly #followed = new Map<string, Followed>();
  /** The kind of each step handed out (which queue holds its job). */
  readonly #kinds = new Map<string, "model" | "run">();
  readonly #endings: StepEndNotices | undefined;
  readonly #followEveryMs: number;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  /** A step ended while a read was under way: that read may not see it, so another follows. */
  #readAgain = false;
  /** The read a step's end notice asked for, while it waits for NOTICE_READ_GAP_MS. */
  #noticeRead: NodeJS.Timeout | undefined;
  #readStartedAt = -Infinity;
  /** Where the last read of the run's changes got to. */
  #cursor: StepChangeCursor | undefined;
  /** When every step was last read (the first read reads them all). */
  #wholeReadAt = -Infinity;

  constructor(run: DispatchedRun, options: ClusterDispatcherOptions) {
    this.#runId = run.runId;
    this.#store = options.store;
    this.#control = options.control;
    this.#queues = {
      model: options.queues.openQueue(MODEL_STEPS_QUEUE),
      run: options.queues.openQueue(RUN_STEPS_QUEUE),
    };
    this.#adds = { model: new BatchedAdds(this.#queues.model), run: new BatchedAdds(this.#queues.run) };
    this.#endings = options.endings;
    this.#followEveryMs = options.followEveryMs ?? FOLLOW_EVERY_MS;
    options.control.onStop((reason) => void this.#stop(reason));
    // Listening before the first step is queued: its ending cannot come sooner.
    void this.#endings?.listen(this.#runId, () => this.#stepEnded());
  }

  enqueue(lane: string, address: string): void {
    this.#ready.push({ lane, address });
  }

  dispatch(start: (step: ReadyStep) => void): void {
    for (let next = this.#ready.shift(); next !== undefined; next = this.#ready.shift()) start(next);
  }

  finished(): void {}

  get waiting(): number {
    return this.#ready.length;
  }

  withdraw(): string[] {
    return this.#ready.splice(0).map((step) => step.address);
  }

  async execute(
    step: PlannedStep,
    _lane: string,
    observe: (step: ObservedStep) => void,
  ): Promise<StepEnding> {
    if (this.#control.reason === "interrupted") return "left";
    const ending = new Promise<StepEnding>((resolve) =>
      this.#followed.set(step.address, { observe, resolve, seen: "pending", state: "pending" }),
    );
    const job: StepJob = { runId: this.#runId, address: step.address };
    this.#kinds.set(step.address, step.kind);
    await this.#adds[step.kind].add(job);
    this.#follow();
    return ending;
  }

  /**
   * The run was told to stop: the steps no worker took yet are taken back from the queue —
   * cancelled with the stop's message (left pending on an interrupt); nothing was submitted
   * for them. On an interrupt the apply also stops following the steps workers hold: they
   * stay recorded, and a worker or the next apply finishes them.
   */
  async #stop(reason: string): Promise<void> {
    for (const [address, followed] of [...this.#followed]) {
      const removed = await this.#queueOf(address)
        .remove(stepJobId({ runId: this.#runId, address }))
        .then((count) => count > 0)
        .catch(() => false);
      if (removed && reason !== "interrupted") {
        // Never submitted: cancelled (or stopped) like a step that never started in one
        // process; the follower reads it back and blocks its dependents.
        const now = Date.now();
        await this.#store.steps
          .update(this.#runId, address, {
            updatedAt: now,
            state: "cancelled",
            error: this.#control.notSubmittedMessage(),
            finishedAt: now,
          })
          .catch(() => undefined);
        continue;
      }
      if (!removed && reason !== "interrupted") continue;
      this.#followed.delete(address);
      followed.resolve("left");
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    clearTimeout(this.#noticeRead);
    await Promise.all([this.#queues.model.close(), this.#queues.run.close(), this.#endings?.close()]);
  }

  /**
   * A step of the run ended elsewhere: read now, or NOTICE_READ_GAP_MS after the last read
   * started (once more after the read under way, which may not see it).
   */
  #stepEnded(): void {
    if (this.#followed.size === 0 || this.#noticeRead !== undefined) return;
    const wait = Math.max(0, this.#readStartedAt + NOTICE_READ_GAP_MS - Date.now());
    this.#noticeRead = setTimeout(() => {
      this.#noticeRead = undefined;
      if (this.#followed.size === 0) return;
      if (this.#reading) this.#readAgain = true;
      else void this.#read();
    }, wait);
  }

  #follow(): void {
    if (this.#timer !== undefined || this.#followed.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#read().finally(() => this.#follow());
    }, this.#followEveryMs);
  }

  /** One read at a time; a notice heard meanwhile makes one more, right after it. */
  #read(): Promise<void> {
    this.#reading ??= this.#readOnce().finally(() => {
      this.#reading = undefined;
      if (!this.#readAgain) return;
      this.#readAgain = false;
      if (this.#followed.size > 0) void this.#read();
    });
    return this.#reading;
  }

  async #readOnce(): Promise<void> {
    try {
      const now = Date.now();
      this.#readStartedAt = now;
      const whole = now - this.#wholeReadAt >= WHOLE_READ_EVERY_MS;
      // The first read reads every step too, a moment after they were queued: nothing to look for yet.
      const lookForLost = whole && this.#wholeReadAt !== -Infinity;
      if (whole) this.#wholeReadAt = now;
      const since = whole ? undefined : this.#cursor;
      const changed = await this.#store.steps.changedSince(this.#runId, since);
      this.#cursor = changed.cursor;
      for (const record of changed.steps) this.#seen(record);
      if (lookForLost) await this.#requeueLost();
    } catch {
      // The next read tries again; a store that stays gone fails the workers' writes too.
    }
  }

  /**
   * Looks for the jobs of the first LOOKED_FOR_AT_WHOLE_READ steps no worker has begun; when
   * one is gone, queues every such step again (a job still queued is left as it is). A step a
   * worker holds is not: its worker still has it, and a second delivery would only re-attach
   * beside it.
   */
  async #requeueLost(): Promise<void> {
    if (this.#control.stopped) return;
    const notBegun = [...this.#followed].filter(([, followed]) => NOT_BEGUN.has(followed.state));
    const lost = await Promise.all(
      notBegun.slice(0, LOOKED_FOR_AT_WHOLE_READ).map(async ([address]) => {
        const job = await this.#queueOf(address).getJob(stepJobId({ runId: this.#runId, address }));
        if (job !== undefined) return false;
        // Or it ended since the read: a worker writes the step's end before its job is removed.
        const record = await this.#store.steps.get(this.#runId, address);
        return record !== undefined && NOT_BEGUN.has(record.state);
      }),
    );
    if (!lost.includes(true)) return;
    await Promise.all(
      notBegun.map(([address]) => this.#adds[this.#kindOf(address)].add({ runId: this.#runId, address })),
    );
  }

  #queueOf(address: string): StepQueue {
    return this.#queues[this.#kindOf(address)];
  }

  /** Which queue holds the job of a step handed out. */
  #kindOf(address: string): "model" | "run" {
    return this.#kinds.get(address) ?? "model";
  }

  #seen(record: StepRecord): void {
    const followed = this.#followed.get(record.address);
    if (!followed) return;
    const state = record.state;
    const seen = `${state} ${record.attempt} ${record.requestId ?? ""}`;
    if (seen === followed.seen) return;
    followed.seen = seen;
    followed.state = state;
    followed.observe({
      address: record.address,
      state,
      attempt: record.attempt,
      requestId: record.requestId,
      error: record.error,
      reusedFrom: record.reusedFromRun,
      files: record.files,
    });
    if (!isTerminal(state)) return;
    this.#followed.delete(record.address);
    followed.resolve(isSuccess(state) ? "succeeded" : "failed");
  }
}

/** The factory of a run's cluster dispatcher (EngineDeps.dispatcher). */
export function clusterDispatcher(options: ClusterDispatcherOptions) {
  return (run: DispatchedRun): Dispatcher => new ClusterDispatcher(run, options);
}
