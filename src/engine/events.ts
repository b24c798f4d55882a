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
  jobs: number;
  concurrency: number;
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
}

export type RunStatus = "succeeded" | "failed" | "interrupted" | "auth_failed" | "cancelled";

export type RunEvent = RunStartedEvent | StepEvent | RunNoticeEvent | RunFinishedEvent;

export type RunEventListener = (event: RunEvent) => void;

/** Where the engine announces its events: an EventBus, or one that waits for the commit (group-commit.ts). */
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
