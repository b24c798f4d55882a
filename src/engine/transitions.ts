/**
 * The one way a step changes state (DESIGN practice 7): check the edge, take the new state
 * in memory at once (so concurrent decisions see it), write it to the state store, and
 * announce it once the store's promise resolved — once the write survives a crash (the
 * port's contract, store/port.ts). A view can never show a state the database does not
 * hold, and a crash right after an announcement loses nothing. Events keep their order:
 * the store resolves writes in the order they were made.
 */
import { usdOf, type CostTotal } from "../cost/money.js";
import type { PlannedStep } from "../plan/types.js";
import type { StateStore } from "../store/port.js";
import type { StepFiles, StepPatch } from "../store/types.js";
import type { Clock } from "../util/clock.js";
import type { ObservedStep } from "./dispatcher.js";
import type { RunEventSink, StepEvent, WaitReason } from "./events.js";
import { OrderedEvents } from "./ordered-events.js";
import { canTransition, IllegalTransitionError, isTerminal, StepState } from "./states.js";

/** What a transition records besides the new state. */
export interface TransitionDetails {
  attempt?: number | undefined;
  requestId?: string | undefined;
  queuePosition?: number | undefined;
  /** Set on failures, and on a `waiting` that follows a failed attempt; cleared on success. */
  error?: string | undefined;
  reusedFrom?: string | undefined;
  /** Further step columns written with the state (output, files, fingerprint …). */
  patch?: Omit<StepPatch, "updatedAt" | "state"> | undefined;
  /**
   * Writes the step's patch itself, in one atomic write with what must share it (an
   * attempt's start, its request id, its end with the outputs): a port method that takes
   * the step's patch. Default: `store.steps.update`.
   */
  writeWith?: ((patch: StepPatch) => Promise<void>) | undefined;
}

/** Told of every step that reached a terminal state, once it is written (the latest view listens). */
export type StepEndedListener = (
  step: PlannedStep,
  state: StepState,
  files: StepFiles | null | undefined,
  reusedFrom: string | undefined,
) => void;

interface LiveStep {
  state: StepState;
  attempt: number;
  requestId: string | undefined;
}

export class StepTracker {
  readonly #runId: string;
  readonly #store: StateStore;
  readonly #events: OrderedEvents;
  readonly #clock: Clock;
  readonly #onEnded: StepEndedListener | undefined;
  readonly #steps = new Map<string, PlannedStep>();
  readonly #live = new Map<string, LiveStep>();
  readonly #counts = new Map<StepState, number>();
  /** What a step cost so far, told on its end (set by the executor: run-costs.ts). */
  costOf: ((address: string) => CostTotal | undefined) | undefined;

  constructor(
    runId: string,
    steps: readonly PlannedStep[],
    deps: { store: StateStore; events: RunEventSink; clock: Clock; onEnded?: StepEndedListener | undefined },
  ) {
    this.#runId = runId;
    this.#store = deps.store;
    // Written before announced, and announced in the order made.
    this.#events = deps.events instanceof OrderedEvents ? deps.events : new OrderedEvents(deps.events);
    this.#clock = deps.clock;
    this.#onEnded = deps.onEnded;
    this.add(steps);
  }

  /** Tracks more steps of the run (recorded as pending already). */
  add(steps: readonly PlannedStep[]): void {
    for (const step of steps) {
      this.#steps.set(step.address, step);
      this.#live.set(step.address, { state: StepState.pending, attempt: 0, requestId: undefined });
    }
    this.#counts.set(StepState.pending, (this.#counts.get(StepState.pending) ?? 0) + steps.length);
  }

  get runId(): string {
    return this.#runId;
  }

  /** The planned step at `address` (the tracker is the run's one index of them). */
  step(address: string): PlannedStep {
    const step = this.#steps.get(address);
    if (step === undefined) throw new Error(`no step ${address} in run ${this.#runId}`);
    return step;
  }

  state(address: string): StepState {
    return this.#get(address).state;
  }

  #get(address: string): LiveStep {
    const live = this.#live.get(address);
    if (live === undefined) throw new Error(`no step ${address} in run ${this.#runId}`);
    return live;
  }

  /** Steps per state right now (only states that hold a step). */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [state, count] of this.#counts) if (count > 0) counts[state] = count;
    return counts;
  }

  /**
   * Takes the new state, writes it (and whatever `details` carries), then emits the step
   * event once the write resolved. Rejects when the write failed (nothing is announced).
   */
  async transition(address: string, to: StepState, details: TransitionDetails = {}): Promise<void> {
    const live = this.#get(address);
    const from = live.state;
    if (!canTransition(from, to)) throw new IllegalTransitionError(address, from, to);
    const now = this.#clock.now();
    const patch: StepPatch = { ...details.patch, updatedAt: now, state: to };
    if (details.attempt !== undefined) patch.attempt = details.attempt;
    if (details.requestId !== undefined) patch.requestId = details.requestId;
    if (to === StepState.in_queue) patch.queuePosition = details.queuePosition ?? null;
    else if (from === StepState.in_queue) patch.queuePosition = null;
    if (details.error !== undefined) patch.error = details.error;
    else if (to === StepState.succeeded || to === StepState.reused) patch.error = null;
    if (details.reusedFrom !== undefined) patch.reusedFromRun = details.reusedFrom;
    if (isTerminal(to)) patch.finishedAt = now;

    const written = details.writeWith
      ? details.writeWith(patch)
      : this.#store.steps.update(this.#runId, address, patch);

    live.state = to;
    if (details.attempt !== undefined) live.attempt = details.attempt;
    if (details.requestId !== undefined) live.requestId = details.requestId;
    // A new attempt has no request until it is submitted.
    else if (to === StepState.waiting || to === StepState.submitting) live.requestId = undefined;
    this.#count(from, to);

    await this.#events.emitAfter(
      written,
      this.#stepEvent(address, from, live, now, {
        queuePosition: to === StepState.in_queue ? details.queuePosition : undefined,
        error: details.error,
        reusedFrom: details.reusedFrom,
      }),
    );
    this.#ended(address, to, details.patch?.files, details.reusedFrom);
  }

  /** One step fewer in `from`, one more in `to`. */
  #count(from: StepState, to: StepState): void {
    this.#counts.set(from, (this.#counts.get(from) ?? 0) - 1);
    this.#counts.set(to, (this.#counts.get(to) ?? 0) + 1);
  }

  /** The step event of a move from `from` to the live step's state, with its cost once it ended. */
  #stepEvent(
    address: string,
    from: StepState,
    live: LiveStep,
    at: number,
    details: Pick<StepEvent, "queuePosition" | "error" | "reusedFrom">,
  ): StepEvent {
    const to = live.state;
    const cost = isTerminal(to) ? this.costOf?.(address) : undefined;
    return {
      event: "step",
      at,
      runId: this.#runId,
      ...this.#names(address),
      address,
      state: to,
      previous: from,
      attempt: live.attempt,
      requestId: live.requestId,
      queuePosition: details.queuePosition,
      model: this.#steps.get(address)?.model,
      error: details.error,
      reusedFrom: details.reusedFrom,
      ...(cost && cost.known > 0 ? { cost: usdOf(cost.micros) } : {}),
      ...(cost && cost.unknown > 0 ? { costUnknown: cost.unknown } : {}),
    };
  }

  /** Tells the run graph of a step that ended (its dependents may go on, or are blocked). */
  #ended(
    address: string,
    to: StepState,
    files: StepFiles | null | undefined,
    reusedFrom: string | undefined,
  ): void {
    const step = this.#steps.get(address);
    if (step && isTerminal(to)) this.#onEnded?.(step, to, files, reusedFrom);
  }

  /**
   * Takes a state another process wrote (a cluster's worker, SPEC §10): nothing is written
   * here, the step event is announced as if this process had made the transition.
   */
  observed(change: ObservedStep): void {
    const { address, state: to } = change;
    const live = this.#get(address);
    const from = live.state;
    if (from === to && live.attempt === change.attempt && live.requestId === change.requestId) return;
    live.state = to;
    live.attempt = change.attempt;
    live.requestId = change.requestId;
    this.#count(from, to);
    this.#events.emit(
      this.#stepEvent(address, from, live, this.#clock.now(), {
        queuePosition: undefined,
        error: change.error,
        reusedFrom: change.reusedFrom,
      }),
    );
    this.#ended(address, to, change.files, change.reusedFrom);
  }

  /**
   * Announces why a step waits (or, without a reason, that it moves again). Nothing is
   * written: a wait is about the moment.
   */
  wait(address: string, reason: WaitReason | undefined): void {
    this.#events.emit({
      event: "step_wait",
      at: this.#clock.now(),
      runId: this.#runId,
      ...this.#names(address),
      address,
      ...(reason ? { reason } : {}),
    });
  }

  /** `job` (`JOB/KEY`) and `step` (the step id) of an address. */
  #names(address: string): { job: string; step: string } {
    const step = this.#steps.get(address);
    return {
      job: step ? `${step.jobId}/${step.instanceKey}` : address.slice(0, address.lastIndexOf("/")),
      step: step?.stepId ?? address.slice(address.lastIndexOf("/") + 1),
    };
  }
}
