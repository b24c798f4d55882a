/**
 * The Dispatcher port: where a run's ready steps go, and how its concurrency is held.
 *
 * The executor (executor.ts, RunExecution) decides WHAT may run — a step whose dependencies
 * succeeded — and hands it over here; the dispatcher decides WHEN it starts (lane capacities)
 * and holds the caps while it runs: the workflow's `concurrency` and per-model `limits` over
 * requests in flight (SPEC §4), and the CPU slots of local processes. One dispatcher serves
 * one run execution; `DispatcherFactory` builds it from the run's caps.
 *
 * The first adapter is in-process (in-process-dispatcher.ts: ReadyLanes, RequestScheduler and
 * a p-queue). The port is shaped so that a queue engine (BullMQ on PostgreSQL, issue 12; see
 * docs/decisions.md "Several machines: the plan" and "The Dispatcher port") fits behind it:
 *
 * - Steps are handed over by address, never as closures: `enqueue(lane, address)`, and the
 *   dispatcher later calls `start(step)` with a plain `ReadyStep` — serialisable with the run
 *   id the dispatcher was built for (a job `runId + address`, started by whichever process's
 *   worker claims it). Whoever ran it calls `finished(step)`: the lane's capacity is freed.
 * - A request slot is acquired and released explicitly around the request (`requests.run`:
 *   acquired before `task` starts, released when it settles, whatever its outcome, or as soon
 *   as the API says the request finished: the task's `release`); a cluster
 *   adapter takes it account-wide (the attempt's claim, counted under an advisory lock) and
 *   still reports why a request waits (`limit` or `concurrency`) through `onWait`, which the
 *   views show (`runflow why`, the live view).
 * - Stop and drain: `withdraw()` takes back every step not started yet (the executor then
 *   cancels them or leaves them pending, by the stop's reason); the executor's modes decide
 *   when the run is drained (`waiting` and the steps it started); `close()` then waits for
 *   what the dispatcher itself still runs and lets go of what it holds.
 *
 * Lanes are names the engine gives (`laneOf`): one per model, one for local programs, one
 * for takeovers of earlier results; an adapter reads a lane it does not know as a model's.
 * More lanes (downloads, say) are more names and more rules, not a change of the port.
 *
 * The hot path is synchronous and allocation-free beyond the `ReadyStep` itself: a run of
 * 100,000 zero-duration steps goes through enqueue → start → finished at >1,000 steps/s.
 */
import type { PlannedStep } from "../plan/types.js";
import type { StepFiles } from "../store/types.js";
import type { StepEnding } from "./context.js";
import type { WaitReason } from "./events.js";
import type { StepState } from "./states.js";

/** A step the dispatcher lets start: which lane it counts against, and its address in the run. */
export interface ReadyStep {
  readonly lane: string;
  readonly address: string;
}

/** Caps requests in flight (`concurrency`, `limits[model]`), in this process or account-wide. */
export interface RequestSlots {
  /**
   * Runs `task` holding a request slot for `model` (any slot when the model has no limit):
   * acquired before `task` starts, released when it settles or when it calls `release` (its
   * request finished at the API: what follows is local work). `onWait` hears why the slot is
   * not free at once — the model's limit, then (or instead) the run's concurrency.
   */
  run<T>(
    model: string | undefined,
    task: (release: () => void) => Promise<T>,
    onWait?: (reason: WaitReason) => void,
  ): Promise<T>;
}

/** CPU slots for local processes (run steps): they use the machine, not API slots. */
export interface ProcessSlots {
  add<T>(task: () => Promise<T>): Promise<T>;
  /** Resolves once no process runs or waits. */
  onIdle(): Promise<void>;
}

/**
 * A dispatcher whose steps run in other processes (a cluster's workers) executes each
 * started step there and follows it: `execute` resolves with the step's ending, once another
 * process wrote it, and tells `observe` of every state the step takes, for the views.
 */
export interface RemoteSteps {
  execute(step: PlannedStep, lane: string, observe: (step: ObservedStep) => void): Promise<StepEnding>;
}

/** A step's state as another process wrote it. */
export interface ObservedStep {
  address: string;
  state: StepState;
  attempt: number;
  requestId: string | undefined;
  error: string | undefined;
  reusedFrom: string | undefined;
  files: StepFiles | undefined;
}

export interface Dispatcher {
  /** Hands over a step whose dependencies all succeeded; it starts when its lane allows. */
  enqueue(lane: string, address: string): void;
  /**
   * Starts every step that may start now, calling `start` for each (synchronously in process;
   * a cluster adapter calls it in the worker that claimed the step). Called after steps are
   * enqueued or finished; `start` must not throw.
   */
  dispatch(start: (step: ReadyStep) => void): void;
  /**
   * A started step's execution ended (whatever its outcome), or it left its lane early (its
   * request is over, only downloads are left): its lane's place is free. Once per step.
   */
  finished(step: ReadyStep): void;
  /** Steps handed over and not started yet. */
  readonly waiting: number;
  /** Takes back every step not started yet (the run stopped): their addresses, in order. */
  withdraw(): string[];
  readonly requests: RequestSlots;
  readonly processes: ProcessSlots;
  /** Set when steps run in other processes: the executor then follows them (RemoteSteps). */
  readonly remote?: RemoteSteps | undefined;
  /**
   * The run's execution is done (no step runs or waits): resolves once nothing the
   * dispatcher started for it still runs (local processes), and releases what it holds
   * (a cluster adapter: its queue's connections). Called once, last.
   */
  close(): Promise<void>;
}

/** What a dispatcher is built from: one run and its caps. */
export interface DispatchedRun {
  runId: string;
  /** Requests in flight across the run (the workflow's `concurrency`, or `--concurrency`). */
  concurrency: number;
  /** Requests in flight per model (the workflow's `limits`). */
  limits: Readonly<Record<string, number>>;
  /** Local processes at once (default the number of CPUs). */
  processConcurrency: number;
}

export type DispatcherFactory = (run: DispatchedRun) => Dispatcher;

/** The lane of run steps (local programs). */
export const RUN_STEP_LANE = "\u0000run";
/**
 * Model steps planned as reused need no request slot: they get a lane of their own, so a
 * resumed run with 50,000 steps to take over starts its first request at once instead of
 * after all of them.
 */
export const REUSE_LANE = "\u0000reuse";

/** The lane a step counts against: local programs, takeovers, or its model's. */
export function laneOf(step: PlannedStep): string {
  return step.kind === "run" ? RUN_STEP_LANE : step.decision === "reuse" ? REUSE_LANE : (step.model ?? "");
}
