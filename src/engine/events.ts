import type { StepState } from "./states.js";

/**
 * The typed event stream: the only link between the engine and every view (listr2, plain
 * lines, NDJSON, summary). Every event is written to the state database before it is emitted.
 */
export interface RunStartedEvent {
  event: "run_started";
  at: number;
  runId: string;
  workflow: string;
  file: string;
  kind: "apply" | "retry";
  steps: number;
  /** Job instances (`JOB/KEY`). */
  jobs: number;
  concurrency: number;
  /** The workflow's per-model `limits`, when it has any. */
  limits?: Record<string, number> | undefined;
  /** Model steps per model, when known at the start (the ETA weighs each by its duration). */
  models?: Record<string, number> | undefined;
  /** The apply's budget in USD (`--max-cost`), when it has one: the live view shows spend against it. */
  maxCostUsd?: number | undefined;
}

export interface StepEvent {
  event: "step";
  at: number;
  runId: string;
  /** `JOB/KEY` of the job instance. */
  job: string;
  step: string;
  /** `JOB/KEY/STEP`. */
  address: string;
  state: StepState;
  previous: StepState;
  attempt: number;
  requestId?: string | undefined;
  queuePosition?: number | undefined;
  model?: string | undefined;
  error?: string | undefined;
  /** Set once, on the transition to reused: the run whose result is taken over. */
  reusedFrom?: string | undefined;
  /**
   * On a step's end: what its attempts of this run cost in USD, when the API reported it
   * (SPEC §9); `costUnknown` counts its billed attempts that reported no cost.
   */
  cost?: number | undefined;
  costUnknown?: number | undefined;
}

/**
 * Why a step that is not done yet is not moving. Sent when the reason starts; a step event
 * (its next state) or a StepWaitEvent without a reason ends it. Not stored: it is about the
 * moment, and a resumed run finds its own reasons.
 */
export type WaitReason =
  /** The model's `limits` entry is full: `limit` requests of it are in flight. */
  | { kind: "limit"; model: string; limit: number }
  /** Every request slot of the run (`concurrency`) is in use. */
  | { kind: "concurrency"; concurrency: number }
  /**
   * Backing off until `until` (ms since the epoch) after `why`: before the next attempt
   * (`attempt`) or, while the request is remote, before polling it again (`poll`).
   */
  | { kind: "backoff"; until: number; why: string; before: "attempt" | "poll" };

export interface StepWaitEvent {
  event: "step_wait";
  at: number;
  runId: string;
  job: string;
  step: string;
  address: string;
  /** Absent: the wait ended (the step moves again). */
  reason?: WaitReason | undefined;
}

/**
 * The API keeps failing for a transient reason (5xx, 429, no answer, an answer that cannot be
 * used), across all steps: sent once when it starts, `api_recovered` once it answers again.
 */
export interface ApiUnreachableEvent {
  event: "api_unreachable";
  at: number;
  runId: string;
  /** When the first failure of the streak was seen. */
  since: number;
  /** Transient failures in a row so far. */
  failures: number;
  /** The last failure, one line. */
  error: string;
}

export interface ApiRecoveredEvent {
  event: "api_recovered";
  at: number;
  runId: string;
  /** When it became unreachable (the `since` of the matching api_unreachable). */
  since: number;
}

/** A model's learned typical request duration changed (typical-durations.ts): the ETA reads it. */
export interface TypicalDurationEvent {
  event: "typical_duration";
  at: number;
  runId: string;
  model: string;
  typicalMs: number;
}

export interface RunNoticeEvent {
  event: "notice";
  at: number;
  runId: string;
  level: "info" | "warn";
  message: string;
}

export interface RunFinishedEvent {
  event: "run_finished";
  at: number;
  runId: string;
  status: RunStatus;
  exitCode: number;
  elapsedMs: number;
  counts: Record<string, number>;
  /** What the run's attempts cost: USD reported (null when none was), and billed attempts that reported none. */
  cost?: { usd: number | null; unknown: number } | undefined;
  /** The run's budget (`--max-cost`), when it had one. */
  budget?: BudgetOutcome | undefined;
}

/** How an apply's budget ended. */
export interface BudgetOutcome {
  maxUsd: number;
  /** Actual costs of the finished attempts (estimates for those that reported none). */
  spentUsd: number;
  /** Whether a step was held back. */
  reached: boolean;
  /** Steps not submitted because of it: held back, and blocked behind those. */
  notSubmitted: number;
}

export type RunStatus = "succeeded" | "failed" | "interrupted" | "auth_failed" | "cancelled";

export type RunEvent =
  | RunStartedEvent
  | StepEvent
  | StepWaitEvent
  | ApiUnreachableEvent
  | ApiRecoveredEvent
  | TypicalDurationEvent
  | RunNoticeEvent
  | RunFinishedEvent;

export type RunEventListener = (event: RunEvent) => void;

/** Where the engine announces its events: an EventBus, or anything that hears them in order. */
export interface RunEventSink {
  emit(event: RunEvent): void;
}

/** Fans events out to listeners; a listener that throws cannot break the run (graphile-worker's safeEmit). */
export class EventBus implements RunEventSink {
  // Replaced, never changed in place (copy on write): an emit iterates the list as it was when
  // it began, without copying it for each of a run's hundreds of thousands of events.
  #listeners: readonly RunEventListener[] = [];
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  subscribe(listener: RunEventListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((known) => known !== listener);
    };
  }

  /** Calls every listener subscribed before this call; one subscribed during it gets the next event. */
  emit(event: RunEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }
}
