/**
 * One run's execution, as an object with explicit modes: it takes in slices of steps, hands
 * every step whose dependencies succeeded to the dispatcher (dispatcher.ts), starts what the
 * dispatcher lets start, blocks the dependents of a step that did not succeed, and ends when
 * nothing more can start. What executing a step means is injected (`execute`); the executor
 * (executor.ts) builds the parts.
 *
 * The execution is always in one of these modes; each is entered through one method that
 * asserts the mode's invariants (an illegal transition throws an ExecutionModeError: a bug).
 *
 * ## feeding (initial)
 *
 * Slices arrive (`add`) while steps run; ready steps go to the dispatcher and start as it
 * lets them. Invariants: the feed is open; the run is not stopped.
 * Leaves to `draining` (`endFeed`) or `stopping` (the run is told to stop).
 *
 * ## draining
 *
 * No more slices; running steps finish, and the steps they release still start.
 * Invariants: the feed is closed; the run is not stopped.
 * Leaves to `done` once no step runs and none waits, or to `stopping`.
 *
 * ## stopping
 *
 * The run was told to stop (RunControl: interrupt, cancel, refused token, no balance). No
 * step starts any more: those waiting in the dispatcher are taken back when the mode is
 * entered, and every step that becomes ready later is abandoned at once — cancelled with the
 * stop's message (and its dependents blocked), or, on an interrupt, left pending for the
 * next apply. Running steps finish as the stop's reason tells them (RunControl). Slices may
 * still arrive: their steps are recorded and abandoned like the others.
 * Invariants: the run is stopped; the dispatcher holds no waiting step.
 * Leaves to `done` once the feed is closed and no step runs.
 *
 * ## done
 *
 * Every started step ended. Invariants: the feed is closed; no step runs; none waits.
 * `finished` resolves on entry. Transitions made outside a step's execution (blocking,
 * cancelling) may still be being written: `written()` waits for them.
 */
import type { PlannedStep } from "../plan/types.js";
import type { StepEnding } from "./context.js";
import { type Dispatcher, laneOf, type ReadyStep } from "./dispatcher.js";
import type { RunControl, StopReason } from "./run-control.js";
import { RunGraph } from "./run-graph.js";
import { StepState } from "./states.js";
import type { StepTracker } from "./transitions.js";

export type ExecutionMode = "feeding" | "draining" | "stopping" | "done";

/** A transition the execution's modes do not allow: a bug in whoever drives it. */
export class ExecutionModeError extends Error {
  constructor(message: string) {
    super(`run execution: ${message}`);
    this.name = "ExecutionModeError";
  }
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new ExecutionModeError(message);
}

export interface RunExecutionParts {
  /** The run's steps and their states; every step of a slice is added to it by `add`. */
  tracker: StepTracker;
  dispatcher: Dispatcher;
  control: RunControl;
  /**
   * Runs one step to its ending; a rejection is an internal error (a bug, or the database
   * failed). `leaveLane` frees the step's place in its lane before it ends: a model step whose
   * request is over (only its downloads left) keeps no ready step of its model from starting.
   */
  execute(step: PlannedStep, lane: string, leaveLane: () => void): Promise<StepEnding>;
  /** Takes in a slice before any of its steps starts (results, typical durations). */
  admit?(steps: readonly PlannedStep[]): Promise<void>;
  /** Hears the stop once, when the run is told to stop (before anything is abandoned). */
  onStop?(reason: StopReason): void;
}

export class RunExecution {
  readonly #tracker: StepTracker;
  readonly #dispatcher: Dispatcher;
  readonly #control: RunControl;
  readonly #parts: RunExecutionParts;
  readonly #graph = new RunGraph();
  #mode: ExecutionMode = "feeding";
  #feedOpen = true;
  /** Steps started and not ended. */
  #active = 0;
  readonly #finished: Promise<void>;
  #finish!: () => void;
  /** Steps whose execution crashed on a bug or an unusable database (each also recorded as failed when possible). */
  readonly internalErrors: { address: string; error: unknown }[] = [];
  /** Transitions made outside a step's execution (blocking, cancelling); the run ends once they are written. */
  readonly #written = new Set<Promise<void>>();
  /** Bound once: the dispatcher calls it for every step it starts. */
  readonly #start = (step: ReadyStep): void => this.#startStep(step);

  constructor(parts: RunExecutionParts) {
    this.#parts = parts;
    this.#tracker = parts.tracker;
    this.#dispatcher = parts.dispatcher;
    this.#control = parts.control;
    this.#finished = new Promise<void>((resolve) => (this.#finish = resolve));
    parts.control.onStop((reason) => {
      parts.onStop?.(reason);
      if (this.#mode === "feeding" || this.#mode === "draining") this.#setModeStopping();
    });
    if (parts.control.stopped) this.#setModeStopping();
  }

  get mode(): ExecutionMode {
    return this.#mode;
  }

  /** Steps started and not ended yet. */
  get active(): number {
    return this.#active;
  }

  /** Resolves when the execution is done (every started step ended). */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Feeds every slice, closes the feed and waits until done. A slice source that throws stops
   * the run as interrupted (nothing more starts); its error is thrown once the run is done.
   */
  async run(slices: AsyncIterable<readonly PlannedStep[]> | Iterable<readonly PlannedStep[]>): Promise<void> {
    let feedError: Error | undefined;
    try {
      // Every slice is taken in, even after a stop: its steps are recorded, and are left or
      // cancelled like any other that did not start.
      for await (const steps of slices) await this.add(steps);
    } catch (error) {
      feedError = error instanceof Error ? error : new Error(String(error));
      this.#control.stop("interrupted");
    }
    this.endFeed();
    await this.#finished;
    if (feedError !== undefined) throw feedError;
  }

  /** A slice of steps, recorded in the store already: its steps start as soon as they are ready. */
  async add(steps: readonly PlannedStep[]): Promise<void> {
    check(
      this.#feedOpen,
      `a slice of ${steps.length} steps arrived after the feed was closed (${this.#mode})`,
    );
    this.#tracker.add(steps);
    this.#graph.add(steps);
    await this.#parts.admit?.(steps);
    this.#ready(this.#graph.takeInitiallyReady());
    this.#pump();
  }

  /** No more slices: `feeding` → `draining` (a stopping execution stays so); done once nothing runs. */
  endFeed(): void {
    check(this.#feedOpen, `the feed was closed already (${this.#mode})`);
    this.#feedOpen = false;
    if (this.#mode === "feeding") this.#setModeDraining();
    this.#doneIfDrained();
  }

  /** Resolves once every transition made outside a step's execution is written. */
  async written(): Promise<void> {
    while (this.#written.size > 0) await Promise.allSettled([...this.#written]);
  }

  #setModeDraining(): void {
    check(this.#mode === "feeding", `cannot drain from ${this.#mode}`);
    check(!this.#feedOpen, "cannot drain while the feed is open");
    check(!this.#control.stopped, "cannot drain a stopped run");
    this.#mode = "draining";
  }

  #setModeStopping(): void {
    check(this.#mode === "feeding" || this.#mode === "draining", `cannot stop from ${this.#mode}`);
    check(this.#control.stopped, "cannot stop without a stop reason");
    this.#mode = "stopping";
    this.#abandon(this.#dispatcher.withdraw());
    check(this.#dispatcher.waiting === 0, "steps still wait in the dispatcher after a stop");
    this.#doneIfDrained();
  }

  #setModeDone(): void {
    check(this.#mode === "draining" || this.#mode === "stopping", `cannot be done from ${this.#mode}`);
    check(!this.#feedOpen, "cannot be done while the feed is open");
    check(this.#active === 0, `cannot be done while ${this.#active} steps run`);
    check(this.#dispatcher.waiting === 0, `cannot be done while ${this.#dispatcher.waiting} steps wait`);
    this.#mode = "done";
    this.#finish();
  }

  #doneIfDrained(): void {
    if (this.#feedOpen || this.#active > 0) return;
    if (this.#mode === "stopping" || (this.#mode === "draining" && this.#dispatcher.waiting === 0))
      this.#setModeDone();
  }

  /** Steps whose dependencies all succeeded: to the dispatcher, or abandoned when stopping. */
  #ready(addresses: readonly string[]): void {
    if (this.#mode === "stopping") {
      this.#abandon(addresses);
      return;
    }
    for (const address of addresses) this.#dispatcher.enqueue(laneOf(this.#tracker.step(address)), address);
  }

  #pump(): void {
    if (this.#mode === "feeding" || this.#mode === "draining") this.#dispatcher.dispatch(this.#start);
  }

  #startStep(ready: ReadyStep): void {
    const { lane, address } = ready;
    this.#active++;
    // The dispatcher hears `finished` once: when the step leaves its lane, or at its end.
    let inLane = true;
    const leaveLane = () => {
      if (!inLane) return;
      inLane = false;
      this.#dispatcher.finished(ready);
    };
    this.#parts
      .execute(this.#tracker.step(address), lane, () => {
        leaveLane();
        this.#pump();
      })
      .then(
        (ending) => this.#ended(address, ending),
        (error: unknown) => this.#crashed(address, error),
      )
      .finally(() => {
        this.#active--;
        leaveLane();
        this.#pump();
        this.#doneIfDrained();
      })
      .catch((error: unknown) => this.internalErrors.push({ address, error }));
  }

  #ended(address: string, ending: StepEnding): void {
    if (ending === "succeeded") this.#ready(this.#graph.succeeded(address));
    else if (ending === "failed") this.#block(address);
  }

  #crashed(address: string, error: unknown): void {
    this.internalErrors.push({ address, error });
    // Quiet: the database itself may be what failed, and that is reported already.
    const message = `internal error: ${error instanceof Error ? error.message : String(error)}`;
    if (this.#tracker.state(address) !== StepState.failed)
      this.#awaitWrite(
        address,
        this.#tracker.transition(address, StepState.failed, { error: message }),
        true,
      );
    this.#block(address, true);
  }

  #block(address: string, quiet = false): void {
    for (const blocked of this.#graph.failed(address)) {
      this.#awaitWrite(
        blocked,
        this.#tracker.transition(blocked, StepState.blocked, {
          error: `not run: ${address} ${this.#tracker.state(address)}`,
        }),
        quiet,
      );
    }
  }

  /** Steps that will never start because the run stopped: cancelled (or left pending on an interrupt). */
  #abandon(addresses: readonly string[]): void {
    if (this.#control.reason === "interrupted") return;
    const message = this.#control.notSubmittedMessage();
    for (const address of addresses) {
      if (this.#tracker.state(address) !== StepState.pending) continue;
      this.#awaitWrite(address, this.#tracker.transition(address, StepState.cancelled, { error: message }));
      this.#block(address);
    }
  }

  #awaitWrite(address: string, write: Promise<void>, quiet = false): void {
    this.#written.add(write);
    write.then(
      () => this.#written.delete(write),
      (error: unknown) => {
        this.#written.delete(write);
        if (!quiet) this.internalErrors.push({ address, error });
      },
    );
  }
}
