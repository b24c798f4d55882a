/**
 * The state store port (SPEC §5): what the engine, the CLI and the cost code need from the
 * state of earlier and current runs, and nothing about how it is kept. SQLite is its first
 * adapter (sqlite-state-store.ts); another (PostgreSQL) must fit behind it without a change
 * to the engine, and must pass the same conformance suite (test/store-conformance.ts).
 *
 * The contract every adapter keeps:
 * - **Every method returns a promise.** A networked store cannot answer synchronously.
 * - **A write's promise resolves only once what it wrote survives a crash of the process**,
 *   and rejects when that cannot be promised. This is the money invariant's foundation: the
 *   engine sends a POST only after `attempts.start` resolved, and polls a request only
 *   after `attempts.recordRequestId` resolved — a crash in between leads to re-attachment,
 *   never to a second (billed) submission. How an adapter makes writes durable (one commit
 *   per write, or one shared by all the writes of a turn of the event loop) is its own
 *   business: the engine never commits.
 * - **Writes apply in call order and are visible to this store's reads at once**, before
 *   their promise resolves: a read issued after a write sees it.
 * - **What must change together is one method**, atomic inside the adapter (a step's new
 *   state with its attempt's start, its request id or its outputs): there is no transaction
 *   to open across calls.
 * - Timestamps are milliseconds since the epoch, always passed in (the store has no clock).
 *   There is no field for the API token anywhere; an adapter redacts it from stored text.
 *
 * The methods are grouped by use and named for what the engine needs, not for tables.
 */
import type { BudgetFigures } from "../cost/budget.js";
import type { CostTotal } from "../cost/money.js";
import type {
  AttemptKey,
  AttemptPatch,
  AttemptRecord,
  InFlightAttempt,
  InputCaptureRecord,
  LockHolder,
  LockOptions,
  LockRequest,
  LockResult,
  NewAttempt,
  NewInputCapture,
  NewOutput,
  NewRun,
  NewStep,
  OutputRecord,
  PriceRecord,
  ReusableStep,
  ReuseScope,
  RunRecord,
  RunResult,
  StepFilter,
  StepPatch,
  StepRecord,
  StoredStepState,
  TypicalDuration,
  WorkerBeat,
  WorkerRecord,
} from "./types.js";

export interface RunsPort {
  create(run: NewRun): Promise<void>;
  finish(runId: string, result: RunResult): Promise<void>;
  get(runId: string): Promise<RunRecord | undefined>;
  /** The newest run (of one workflow, or of any). */
  latest(workflowName?: string): Promise<RunRecord | undefined>;
  /** Newest first. */
  list(options: { limit: number; workflowName?: string | undefined }): Promise<RunRecord[]>;
  /** The resolved plan stored with the run; undefined when the run does not exist. */
  plan(runId: string): Promise<unknown>;
  /** Replaces the plan a run was created with (a plan recorded as it is made is complete only at the end). */
  setPlan(runId: string, plan: unknown): Promise<void>;
  /**
   * The parts of a run's plan, in order (from part `fromPart` on: a worker reading the parts
   * recorded since it last read); none for a plan stored whole.
   */
  planParts(runId: string, fromPart?: number): Promise<unknown[]>;
  /**
   * Records a slice of a run's plan: its steps (all in one atomic write, however many) and
   * part `part` of the stored plan (those steps as the plan keeps them).
   */
  addPlanPart(
    runId: string,
    part: number,
    steps: readonly NewStep[],
    stored: unknown,
    createdAt: number,
  ): Promise<void>;
  requestCancel(runId: string, at: number): Promise<void>;
  /**
   * Marks the earlier runs of `run`'s workflow and API origin that were left unfinished and
   * whose every unfinished step has now succeeded (or been reused) in `run`: they say `run`
   * finished them. Called holding the workflow's lock, once `run` is over. Returns their ids.
   */
  closeFinishedBy(runId: string): Promise<string[]>;
  /** The instances (`JOB/KEY`) of a run with a step that did not succeed (nor was reused). */
  unfinishedInstances(runId: string): Promise<Set<string>>;
}

/** What is written in one atomic write with a step's new columns (`StepsPort.update`). */
export interface WrittenWithStep {
  /** A change to one of the step's attempts (its end, its queue position, its state). */
  attempt?: { key: AttemptKey; patch: AttemptPatch } | undefined;
  /** Output rows, upserted by (run, address, name, index). */
  outputs?: readonly NewOutput[] | undefined;
}

/** Where a reader of a run's step changes got to (opaque: only the adapter reads it). */
export type StepChangeCursor = string;

export interface StepsPort {
  /** All in one atomic write: a 100,000-step plan costs one commit. */
  insert(runId: string, steps: readonly NewStep[], createdAt: number): Promise<void>;
  /** Writes a step's columns, and with them (atomically) what `also` carries. */
  update(runId: string, address: string, patch: StepPatch, also?: WrittenWithStep): Promise<void>;
  get(runId: string, address: string): Promise<StepRecord | undefined>;
  /** In plan order. */
  list(runId: string, filter?: StepFilter): Promise<StepRecord[]>;
  /**
   * What a follower of the run (the apply on a cluster) reads again and again: the steps
   * written since `since` (every step without it), and the cursor to pass next time. A step
   * written after the cursor is never missed; one may come back unchanged. An adapter whose
   * writes all come from this process may return every step each time.
   */
  changedSince(
    runId: string,
    since?: StepChangeCursor,
  ): Promise<{ steps: StepRecord[]; cursor: StepChangeCursor }>;
  countByState(runId: string): Promise<Partial<Record<StoredStepState, number>>>;
}

export interface AttemptsPort {
  /**
   * Inserts the attempt, and writes the step's patch with it atomically (its `attempt` and
   * `requestId` mirror the attempt). Resolved: the attempt is durable, a POST may go out.
   */
  start(attempt: NewAttempt, step: StepPatch): Promise<void>;
  /**
   * Records the request id the API just returned (and the step's new state, when given).
   * Resolved: a crash from now on leads to re-attachment, never to a second submission.
   */
  recordRequestId(key: AttemptKey, requestId: string, at: number, step?: StepPatch): Promise<void>;
  update(key: AttemptKey, patch: AttemptPatch): Promise<void>;
  /**
   * The fence of a submission across processes (SPEC §10): inserts the attempt claimed by
   * `worker`, with the step's patch, atomically — unless that attempt exists already. True:
   * this claim committed first, and only its worker may send the POST. False: another
   * process claimed it; nothing was written.
   */
  claim(attempt: NewAttempt, step: StepPatch, worker: string): Promise<boolean>;
  /**
   * `recordRequestId` for a claimed attempt, conditional: only while the attempt is still
   * `submitting`, without an id, and claimed by `worker`. False: the attempt was judged
   * abandoned (`abandon`) first — the claimant drops the step, it does not poll it.
   */
  recordClaimedRequestId(
    key: AttemptKey,
    worker: string,
    requestId: string,
    at: number,
    step?: StepPatch,
  ): Promise<boolean>;
  /**
   * The verdict on an attempt whose claimant died before recording a request id: it becomes
   * `unknown` (maybe billed) with `error`, and the step with it — conditional, only while
   * the attempt is `submitting` without an id. Of a late `recordClaimedRequestId` and this,
   * exactly one wins: false when the id was recorded first.
   */
  abandon(key: AttemptKey, error: string, at: number, step: StepPatch): Promise<boolean>;
  /** A run's attempts (of one step, when given), in the order they started. */
  list(runId: string, address?: string): Promise<AttemptRecord[]>;
}

export interface OutputsPort {
  /** Upserts by (run, address, name, index), all in one atomic write: a download redone on resume replaces its row. */
  record(outputs: readonly NewOutput[]): Promise<void>;
  /** A run's outputs in plan order (of a step, in the order recorded). */
  list(runId: string, address?: string): Promise<OutputRecord[]>;
  /** Upsert by (run, URL): a run's copy of a step's remote input still (for its report). */
  recordInputCapture(capture: NewInputCapture): Promise<void>;
  /** The captures of these runs, in the order they were recorded. */
  inputCaptures(runIds: readonly string[]): Promise<InputCaptureRecord[]>;
}

/** The worker processes sharing a store (SPEC §10): their heartbeats tell who is alive. */
export interface WorkersPort {
  /** Records (or refreshes) a worker's heartbeat and what it is doing. */
  beat(worker: WorkerBeat): Promise<void>;
  /** The worker leaves (it stopped): its row is removed. */
  leave(name: string): Promise<void>;
  /** Every worker with a heartbeat at or after `since`, by name. */
  list(since: number): Promise<WorkerRecord[]>;
}

/** What `budgets.reserve` answers: whether the attempt may be sent, and where the budget stands after. */
export interface BudgetDecision extends BudgetFigures {
  granted: boolean;
}

/**
 * A run's budget (SPEC §9) kept in the state, so that every process executing the run's
 * steps decides against the same figures (SPEC §10). Each method is atomic across every
 * process sharing the store; the rule is cost/budget.ts's (`fitsBudget`, `currentEstimate`).
 * Reservations are per attempt; settling or releasing one twice changes nothing the second
 * time (a redelivered step may report the same request again).
 */
export interface BudgetsPort {
  /** Gives the run a budget: its cap and each model's estimate per request (micro-dollars). */
  open(
    runId: string,
    budget: { maxMicros: number; estimates: Readonly<Record<string, number>> },
  ): Promise<void>;
  /** Where the run's budget stands; undefined when the run has none. */
  get(runId: string): Promise<BudgetFigures | undefined>;
  /**
   * Reserves the model's estimate now for the attempt when spent + reserved + it stay within
   * the cap and the budget is not reached; otherwise the budget is reached (every later
   * reservation is refused too) and one more request is counted held. An attempt that has a
   * reservation already (another delivery of the same step) is granted without counting
   * it twice: only one of them wins the attempt's claim. Rejects for a run without a budget.
   */
  reserve(key: AttemptKey, model: string): Promise<BudgetDecision>;
  /**
   * The attempt's request ended, or may have been created and is lost: its reservation is
   * replaced by `actualMicros`, or by the estimate reserved when the API reported no cost (a
   * re-attached request that reserved nothing spends what it reported). A reported cost
   * counts toward the model's mean, which raises its estimate when higher. Nothing for a run
   * without a budget.
   */
  settle(key: AttemptKey, model: string, actualMicros: number | undefined): Promise<void>;
  /** Nothing was created: the attempt's reservation goes back. Nothing for a run without a budget. */
  release(key: AttemptKey): Promise<void>;
}

export interface LocksPort {
  /** One live apply per workflow. Atomic across processes; takes over a holder that is stale or (same host) dead. */
  acquire(workflowName: string, holder: LockRequest, options: LockOptions): Promise<LockResult>;
  /** Refreshes the heartbeat; false when this run no longer holds the lock. */
  heartbeat(workflowName: string, runId: string, now: number): Promise<boolean>;
  release(workflowName: string, runId: string): Promise<void>;
  get(workflowName: string): Promise<LockHolder | undefined>;
}

/**
 * Earlier runs as the planner and the executor read them, synchronously: the planner is a
 * pure, synchronous function over `PriorState` (plan/types.ts), asked once per step of
 * plans of 100,000 steps. `history.priorRuns` hands out this lookup for one workflow; an
 * adapter answers it from indexed synchronous queries (SQLite) or from what it fetched when
 * the lookup was made, kept up to date with its own later writes (a networked store).
 * Only questions about the workflow it was made for may be asked.
 */
export interface PriorRunsLookup {
  /** The newest step of this workflow that succeeded with this fingerprint within the scope, with its outputs. */
  findSucceeded(workflowName: string, fingerprint: string, scope: ReuseScope): ReusableStep | undefined;
  /** The in-flight attempts at `address` with this fingerprint: the newest of each API origin, newest first. */
  inFlightAt(workflowName: string, fingerprint: string, address: string): InFlightAttempt[];
  /** Every in-flight attempt of the workflow, oldest first. */
  listInFlight(workflowName: string): InFlightAttempt[];
}

export interface HistoryPort {
  /** The synchronous lookup of earlier runs of one workflow (PriorRunsLookup says why synchronous). */
  priorRuns(workflowName: string): Promise<PriorRunsLookup>;
  /**
   * The median server-measured duration of the model's latest succeeded requests at this API
   * origin (any workflow) and their spread, or undefined when none is known: where a run
   * starts polling the model, and how soon it looks again at a request not done then.
   */
  typicalDuration(model: string, apiOrigin: string): Promise<TypicalDuration | undefined>;
  /** The mean reported cost of the model's latest succeeded requests at this API origin, and how many it is the mean of. */
  learnedCost(model: string, apiOrigin: string): Promise<{ micros: number; requests: number } | undefined>;
  /** What the run's attempts cost: reported costs summed, and billed attempts that reported none. */
  runCost(runId: string): Promise<CostTotal>;
  /** The same, per step address (steps without a billed attempt are absent). */
  stepCosts(runId: string): Promise<Map<string, CostTotal>>;
  recordPrice(price: PriceRecord): Promise<void>;
  /** The prices read from this API origin, by model id. */
  pricesAt(apiOrigin: string): Promise<Map<string, PriceRecord>>;
}

export interface StateStore {
  readonly runs: RunsPort;
  readonly steps: StepsPort;
  readonly attempts: AttemptsPort;
  readonly outputs: OutputsPort;
  readonly locks: LocksPort;
  readonly workers: WorkersPort;
  readonly history: HistoryPort;
  readonly budgets: BudgetsPort;
  /** Makes every write durable (or rejects), then releases the store. */
  close(): Promise<void>;
}

/** Options of opening a state store for a command. */
export interface OpenStateStoreOptions {
  /** Reading only (status, runs, report): nothing is created, a missing store is an error. */
  readonly?: boolean | undefined;
  /** With `readonly`: not even an older schema is upgraded in place (`plan` writes nothing). */
  neverWrite?: boolean | undefined;
  /** Values never written to the store: any occurrence in stored text becomes `[redacted]`. */
  secrets?: readonly string[] | undefined;
}

/** Opens the state store at `location` (a file path for SQLite). */
export type StateStoreOpener = (location: string, options?: OpenStateStoreOptions) => Promise<StateStore>;
