/**
 * One run's steps as a worker of a cluster executes them (SPEC §10): the worker is handed a
 * step by address (a queue engine's job `runId + address`, delivered at least once) and runs
 * it with the very step code of one machine (model-step.ts, run-step.ts), in an execution
 * context built from the store alone — the run's stored plan, the results of the steps it
 * reads — instead of from the apply's memory.
 *
 * Before a model step runs, its run's own attempts of it decide what this delivery may do
 * (the fence's third rule; docs/decisions.md "Several machines: the plan"):
 * - the step ended already: nothing (a redelivery of a finished job);
 * - its last attempt holds a request id and may still be running: re-attached (polled,
 *   never submitted again);
 * - its last attempt was claimed and is `submitting` without an id: by a live worker, the
 *   step is busy (the queue delivers it again later); by a dead one, the attempt becomes
 *   `unknown` (maybe billed) — a conditional write that a late id of the claimant beats or
 *   loses to, never both;
 * - otherwise it runs, each attempt claimed (context.fence): only the first claim to commit
 *   submits.
 */
import PQueue from "p-queue";
import type { Plan, PlannedStep } from "../plan/types.js";
import type { MediaFacts } from "../models/types.js";
import type { PollPolicy } from "../workflow/types.js";
import { type AttemptRecord, type StepRecord, WORKER_DEAD_AFTER_MS } from "../store/types.js";
import { ApiHealth, apiHealthMonitor } from "./api-health.js";
import type { ExecutionContext, StepFence } from "./context.js";
import type { EngineApi, EngineDeps } from "./deps.js";
import type { ProcessSlots, RequestSlots } from "./dispatcher.js";
import { DEFAULT_CACHE_TTL_MS } from "./executor.js";
import { InputCaptures } from "./input-captures.js";
import { executeModelStep } from "./model-step.js";
import { RunControl } from "./run-control.js";
import { RunCosts, type RunSpending } from "./run-costs.js";
import { SharedRunCosts } from "./shared-run-costs.js";
import { executeRunStep } from "./run-step.js";
import { isTerminal, StepState } from "./states.js";
import { resultView, StepResults } from "./step-results.js";
import { decodePlan, readStoredPlanSoFar } from "./stored-plan.js";
import { StepTracker } from "./transitions.js";
import { TypicalDurations } from "./typical-durations.js";

export { WORKER_DEAD_AFTER_MS };

/** What one delivery of a step came to. */
export type WorkerStepOutcome =
  /** The step ended (or had ended): its state is in the store. */
  | "done"
  /** Left unfinished (this worker stops, or another process holds its attempt): deliver it again. */
  | "handed_back"
  /** A live worker holds its attempt without an id yet: deliver it again a little later. */
  | "busy";

/**
 * The slots of one run's requests, account-wide, taken for each step: a slot belongs to its
 * step's request (a dead worker's is taken over by the step's next worker; account-slots.ts).
 */
export interface StepRequestSlots {
  forStep(step: { runId: string; address: string; timeoutMs: number }): RequestSlots;
}

/** The caps of a run's requests, account-wide: built by the cluster for each run. */
export type RunRequestSlots = (run: {
  concurrency: number;
  limits: Readonly<Record<string, number>>;
  /**
   * The run's stop of submissions: a request still waiting for a slot then stops waiting,
   * and its task runs without one — it sends nothing (model-step.ts checks the stop first).
   */
  stopSignal: AbortSignal;
}) => StepRequestSlots;

export interface WorkerRunParts {
  deps: EngineDeps;
  /**
   * The client a run's requests go through, polling as its workflow's `poll` settings say
   * (as an apply on one machine does); default `deps.api` for every run.
   */
  clientFor?: ((poll: PollPolicy) => EngineApi) | undefined;
  /** The worker's name, as its claims and heartbeats record it. */
  worker: string;
  control: RunControl;
  requestSlots: RunRequestSlots;
  processes: ProcessSlots;
}

const OPEN_ATTEMPT = new Set(["submitted", "in_queue", "in_progress"]);

export class WorkerRun {
  readonly #parts: WorkerRunParts;
  /** The worker's ports, with this run's own client. */
  readonly #deps: EngineDeps;
  readonly #runId: string;
  readonly #workflowName: string;
  readonly #apiOrigin: string;
  readonly #plan: Omit<Plan, "steps">;
  readonly #steps: Map<string, PlannedStep>;
  /** How many parts of the stored plan were read (the steps of later ones are read when one is met). */
  #partsRead: number;
  /** The read of the parts recorded since, under way: every delivery of a step not known yet waits for it. */
  #readingMore: Promise<void> | undefined;
  readonly #slots: StepRequestSlots;
  readonly #typical = new TypicalDurations();
  readonly #mediaCache = new Map<string, Promise<MediaFacts>>();
  /** Downloads of this run's outputs in this worker: bounded, holding no request slot. */
  readonly #downloads = new PQueue({ concurrency: 8 });
  readonly #captures: InputCaptures;
  readonly #options: ExecutionContext["options"];
  /** This run's stops in this worker: the worker's own (interrupt), or the run's cancel. */
  readonly #control = new RunControl();
  /** The run's costs: its budget, when it has one, is kept in the shared state. */
  readonly #costs: RunSpending;
  /** Deliveries of this run executing now; while any, the run's cancel is watched. */
  #active = 0;
  /** Deliveries executing now in this worker, by step: a claim of ours with none is orphaned. */
  readonly #executing = new Map<string, number>();
  #watch: NodeJS.Timeout | undefined;

  private constructor(
    parts: WorkerRunParts,
    { plan, partsRead }: PlanSoFar,
    apiOrigin: string,
    options: RunOptions,
    budgeted: boolean,
  ) {
    this.#parts = parts;
    // The worker stopping (SIGINT/SIGTERM, or the apply whose worker it is ending) hands
    // this run's steps back: an interrupt of the run here. Only that: a cancel of the apply's
    // own run reaches each run through its record (#watchCancel), never another run.
    const handBack = () => this.#control.stop("interrupted");
    if (parts.control.watchSignal.aborted) handBack();
    else parts.control.watchSignal.addEventListener("abort", handBack, { once: true });
    this.#deps = parts.clientFor ? { ...parts.deps, api: parts.clientFor(plan.workflow.poll) } : parts.deps;
    this.#costs = budgeted
      ? new SharedRunCosts(parts.deps.store.budgets, plan.runId)
      : new RunCosts(new Map(), undefined);
    this.#runId = plan.runId;
    this.#workflowName = plan.workflow.name;
    this.#apiOrigin = apiOrigin;
    this.#plan = plan;
    this.#steps = new Map(plan.steps.map((step) => [step.address, step]));
    this.#partsRead = partsRead;
    this.#slots = parts.requestSlots({
      concurrency: options.concurrency ?? plan.workflow.concurrency,
      limits: plan.workflow.limits,
      stopSignal: this.#control.submitSignal,
    });
    this.#options = {
      fresh: options.fresh ?? false,
      download: options.download ?? true,
      resubmitUnknown: options.resubmitUnknown ?? false,
      cacheTtlMs: options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS,
    };
    this.#captures = new InputCaptures(
      this.#deps,
      plan.runId,
      parts.control.watchSignal,
      this.#options.download,
    );
  }

  /** The run as the store holds it; undefined when it is not there (or has no stored plan). */
  static async open(runId: string, parts: WorkerRunParts): Promise<WorkerRun | undefined> {
    const { store } = parts.deps;
    const run = await store.runs.get(runId);
    const plan = await loadPlan(parts, runId);
    if (!run || !plan || run.apiOrigin === undefined) return undefined;
    // A budget is given to the state before the run's first step is handed out.
    const budgeted = (await store.budgets.get(runId)) !== undefined;
    return new WorkerRun(parts, plan, run.apiOrigin, run.options ?? {}, budgeted);
  }

  /** The API the run is made at: only a worker with a client for it may execute its steps. */
  get apiOrigin(): string {
    return this.#apiOrigin;
  }

  /** Executes one delivery of the step at `address`. */
  async execute(address: string): Promise<WorkerStepOutcome> {
    this.#active++;
    this.#executing.set(address, (this.#executing.get(address) ?? 0) + 1);
    this.#watchCancel();
    try {
      return await this.#execute(address);
    } finally {
      this.#active--;
      const left = (this.#executing.get(address) ?? 1) - 1;
      if (left > 0) this.#executing.set(address, left);
      else this.#executing.delete(address);
    }
  }

  /**
   * While deliveries run, the run's cancel (`runflow cancel`, recorded in the store) is read
   * every second: a cancelled run submits nothing more here, and its queued requests are
   * cancelled as in one process.
   */
  #watchCancel(): void {
    if (this.#watch !== undefined || this.#control.stopped) return;
    this.#watch = setInterval(() => {
      if (this.#active === 0) {
        clearInterval(this.#watch);
        this.#watch = undefined;
        return;
      }
      void this.#cancelRequested().then(
        (cancelled) => cancelled && this.#control.stop("cancelled"),
        () => undefined,
      );
    }, 1_000);
    this.#watch.unref();
  }

  async #execute(address: string): Promise<WorkerStepOutcome> {
    const deps = this.#deps;
    const step = await this.#step(address);
    if (!step) throw new Error(`run ${this.#runId} has no step ${address}`);
    const record = await deps.store.steps.get(this.#runId, address);
    if (!record || isTerminal(record.state)) return "done";

    const tracker = new StepTracker(this.#runId, [step], deps);
    // A run cancelled (`runflow cancel`) submits nothing more: a step not started yet ends here.
    if ((record.state === "pending" || record.state === "waiting") && (await this.#cancelRequested())) {
      await tracker.transition(address, StepState.cancelled, {
        error: "not submitted: the run was cancelled",
      });
      return "done";
    }
    const context = await this.#context(step, tracker);
    if (step.kind === "run") {
      const ending = await executeRunStep({ ...context, handsBackLocalWork: true }, step);
      return ending === "left" ? "handed_back" : "done";
    }
    const attempts = await deps.store.attempts.list(this.#runId, address);
    const fence: StepFence = { worker: this.#parts.worker, attemptsBefore: attempts.length };
    const last = attempts.at(-1);
    if (last && last.state === "submitting" && last.requestId === undefined) {
      return this.#claimedWithoutId(last, record);
    }
    if (last && last.requestId !== undefined && OPEN_ATTEMPT.has(last.state)) {
      fence.reattach = {
        requestId: last.requestId,
        fromRunId: last.reattachedFromRun ?? this.#runId,
        submittedAt: last.submittedAt ?? last.startedAt,
      };
    }
    const ending = await executeModelStep({ ...context, fence }, step);
    if (ending !== "left") return "done";
    // Left by a stop of this worker, or by a claim another process won: its state tells.
    const now = await deps.store.steps.get(this.#runId, address);
    return now && isTerminal(now.state) ? "done" : "handed_back";
  }

  async #cancelRequested(): Promise<boolean> {
    const run = await this.#parts.deps.store.runs.get(this.#runId);
    return run?.cancelRequestedAt !== undefined;
  }

  /** Resolves once the input captures this run started are settled. */
  settled(): Promise<void> {
    return this.#captures.settled();
  }

  /**
   * An attempt claimed without a request id: busy while its claimant works on it, else
   * `unknown`. A claimant that lives but no longer executes the step — this worker, whose
   * delivery ended in an error between the claim and the id (the state refused the id) —
   * will never record one: its claim is as orphaned as a dead worker's.
   */
  async #claimedWithoutId(last: AttemptRecord, record: StepRecord): Promise<WorkerStepOutcome> {
    const deps = this.#deps;
    const now = deps.clock.now();
    const ours = last.claimedBy === this.#parts.worker;
    // This delivery is one of the step's deliveries here: another one means the claim is in hand.
    const orphanedHere = ours && (this.#executing.get(last.address) ?? 0) <= 1;
    if (!orphanedHere) {
      const live = await deps.store.workers.list(now - WORKER_DEAD_AFTER_MS);
      if (last.claimedBy !== undefined && live.some((worker) => worker.name === last.claimedBy))
        return "busy";
    }
    const error = orphanedHere
      ? `its worker ${last.claimedBy ?? "(unknown)"} sent the request but could not record its id; it may have been created (and billed), so it is not sent again`
      : `its worker ${last.claimedBy ?? "(unknown)"} stopped answering after sending the request and before recording its id; it may have been created (and billed), so it is not sent again`;
    await deps.store.attempts.abandon(last, error, now, {
      updatedAt: now,
      state: StepState.unknown,
      error,
      finishedAt: now,
      attempt: record.attempt,
    });
    // Lost the verdict: the claimant's id came first, and the next delivery re-attaches.
    const after = await deps.store.steps.get(this.#runId, last.address);
    return after && isTerminal(after.state) ? "done" : "handed_back";
  }

  /**
   * The planned step. One of a part recorded after the run was opened here (its apply plans
   * and records a run in slices, and its workers open it from the first) is read with the
   * parts recorded since: one read for every delivery that waits meanwhile, and once more if
   * the step's part committed after that read began.
   */
  async #step(address: string): Promise<PlannedStep | undefined> {
    for (let read = 0; read < 2; read++) {
      const known = this.#steps.get(address);
      if (known) return known;
      this.#readingMore ??= this.#readMore().finally(() => (this.#readingMore = undefined));
      await this.#readingMore;
    }
    return this.#steps.get(address);
  }

  /** The steps of the parts recorded since the last read, with their records. */
  async #readMore(): Promise<void> {
    const { store } = this.#parts.deps;
    const read = await readStoredPlanSoFar(store, this.#runId, this.#partsRead);
    if (!read || read.plan.steps.length === 0) return;
    // Decoded once for the addresses, then with the records (each model step's body and
    // fingerprint): the records of these steps only, in one batched read.
    const addresses = decodePlan(read.plan, new Map()).steps.map((step) => step.address);
    const records = new Map<string, StepRecord>();
    for (const record of await Promise.all(addresses.map((address) => store.steps.get(this.#runId, address))))
      if (record) records.set(record.address, record);
    for (const step of decodePlan(read.plan, records).steps) this.#steps.set(step.address, step);
    this.#partsRead = read.parts;
  }

  async #context(step: PlannedStep, tracker: StepTracker): Promise<ExecutionContext> {
    const deps = this.#deps;
    const control = this.#control;
    const results = new StepResults(this.#plan, [step]);
    for (const dependency of step.dependsOn) {
      const done = await deps.store.steps.get(this.#runId, dependency);
      if (done)
        results.record(
          dependency,
          resultView({
            output: done.output,
            files: done.files,
            requestId: done.requestId,
            stdout: done.stdout,
          }),
        );
    }
    if (step.model !== undefined && this.#typical.get(step.model) === undefined)
      this.#typical.seed(step.model, await deps.store.history.typicalDuration(step.model, this.#apiOrigin));
    const notice = (level: "info" | "warn", message: string) =>
      deps.events.emit({ event: "notice", at: deps.clock.now(), runId: this.#runId, level, message });
    return {
      runId: this.#runId,
      workflowName: this.#workflowName,
      apiOrigin: this.#apiOrigin,
      deps,
      // Fetched for every delivery: other processes wrote to the run since.
      prior: await deps.store.history.priorRuns(this.#workflowName),
      options: this.#options,
      tracker,
      control,
      scheduler: this.#slots.forStep({
        runId: this.#runId,
        address: step.address,
        timeoutMs: step.timeoutMs,
      }),
      processes: this.#parts.processes,
      downloads: this.#downloads,
      typical: this.#typical,
      costs: this.#costs,
      results,
      mediaCache: this.#mediaCache,
      captures: this.#captures,
      notice,
      apiHealth: apiHealthMonitor(
        new ApiHealth(),
        () => deps.clock.now(),
        () => undefined,
      ),
    };
  }
}

/** What a run's recorded options may say about its execution. */
interface RunOptions {
  concurrency?: number;
  fresh?: boolean;
  download?: boolean;
  resubmitUnknown?: boolean;
  cacheTtlMs?: number;
}

/** A run's plan as far as it is stored (its apply may be recording the rest), and how many parts that is. */
interface PlanSoFar {
  plan: Plan;
  partsRead: number;
}

async function loadPlan(parts: WorkerRunParts, runId: string): Promise<PlanSoFar | undefined> {
  const { store } = parts.deps;
  const read = await readStoredPlanSoFar(store, runId);
  if (!read) return undefined;
  const records = new Map((await store.steps.list(runId)).map((record) => [record.address, record]));
  return { plan: decodePlan(read.plan, records), partsRead: read.parts };
}
