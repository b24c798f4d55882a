/** Synthetic engine events for the live-view tests: exact times, no engine. */
import type { RunFinishedEvent, RunStartedEvent, StepEvent } from "../src/engine/events.js";
import type { StepState } from "../src/engine/states.js";

export const RUN_ID = "r-20250101-0200";

export function runStarted(at: number, steps: number, jobs: number): RunStartedEvent {
  return {
    event: "run_started",
    at,
    runId: RUN_ID,
    workflow: "teasers",
    file: "teasers.yaml",
    kind: "apply",
    steps,
    jobs,
    concurrency: 8,
  };
}

export function stepEvent(
  address: string,
  previous: StepState,
  state: StepState,
  at: number,
  extra: Partial<StepEvent> = {},
): StepEvent {
  const slash = address.lastIndexOf("/");
  return {
    event: "step",
    at,
    runId: RUN_ID,
    job: address.slice(0, slash),
    step: address.slice(slash + 1),
    address,
    state,
    previous,
    attempt: 1,
    ...extra,
  };
}

export function runFinished(
  at: number,
  elapsedMs: number,
  status: RunFinishedEvent["status"],
): RunFinishedEvent {
  return {
    event: "run_finished",
    at,
    runId: RUN_ID,
    status,
    exitCode: status === "succeeded" ? 0 : 1,
    elapsedMs,
    counts: {},
  };
}

/** The path every model step takes to success, one event per state change. */
export const SUCCESS_PATH: readonly StepState[] = [
  "pending",
  "waiting",
  "submitting",
  "in_queue",
  "in_progress",
  "downloading",
  "succeeded",
];
