/** What every step execution shares within one run. Built once by the executor. */
import type PQueue from "p-queue";
import type { MediaFacts } from "../models/types.js";
import type { PriorRunsLookup } from "../store/port.js";
import type { ApiHealthMonitor } from "./api-health.js";
import type { InputCaptures } from "./input-captures.js";
import type { EngineDeps } from "./deps.js";
import type { ProcessSlots, RequestSlots } from "./dispatcher.js";
import type { RunControl } from "./run-control.js";
import type { RunSpending } from "./run-costs.js";
import type { StepResults } from "./step-results.js";
import type { StepTracker } from "./transitions.js";
import type { TypicalDurations } from "./typical-durations.js";

export interface ResolvedExecuteOptions {
  fresh: boolean;
  download: boolean;
  resubmitUnknown: boolean;
  cacheTtlMs: number;
}

export interface ExecutionContext {
  runId: string;
  workflowName: string;
  /** The API the run is made at, as recorded with it: what it reuses, re-attaches to and learns from. */
  apiOrigin: string;
  deps: EngineDeps;
  /** Earlier runs of the workflow, asked synchronously (reuse, re-attachment): store.history.priorRuns. */
  prior: PriorRunsLookup;
  options: ResolvedExecuteOptions;
  tracker: StepTracker;
  control: RunControl;
  /** Request slots (`concurrency`, `limits`): the dispatcher's (dispatcher.ts). */
  scheduler: RequestSlots;
  /** Local processes of run steps: they use CPUs, not API slots (the dispatcher's). */
  processes: ProcessSlots;
  /** Downloads of finished requests' outputs: bounded, and holding no request slot. */
  downloads: PQueue;
  typical: TypicalDurations;
  /** Estimates, the budget and what each step cost (run-costs.ts). */
  costs: RunSpending;
  results: StepResults;
  /** Media probes shared by every run-time check of this run. */
  mediaCache: Map<string, Promise<MediaFacts>>;
  /** The lane that captures model steps' remote input stills, off the submissions' path. */
  captures: InputCaptures;
  notice(level: "info" | "warn", message: string): void;
  /** Hears every API call's outcome, to tell when the API stops and starts answering. */
  apiHealth: ApiHealthMonitor;
  /**
   * Set when the step runs in a worker of a cluster (SPEC §10): its attempts are claimed
   * (the fence: only the first claim to commit submits) and its request id recorded only
   * while the claim holds. Per step: what its run did before this delivery.
   */
  fence?: StepFence | undefined;
  /**
   * Set in a worker of a cluster: when the worker stops (an interrupt of the run there), a
   * local program it was running is handed back — the step waits for another worker, which
   * runs the program again — instead of ending cancelled, as it does when a lone apply stops.
   */
  handsBackLocalWork?: boolean | undefined;
}

export interface StepFence {
  /** The worker's name, as its claims record it. */
  worker: string;
  /** Attempts of this step its run made already (a redelivered step continues after them). */
  attemptsBefore: number;
  /** The request this run's own last attempt holds: polled, never submitted again. */
  reattach?: { requestId: string; fromRunId: string; submittedAt: number } | undefined;
}

/**
 * How a step's execution ended, for the run graph: `succeeded` releases its dependents,
 * `failed` blocks them, `left` means it stopped unfinished (interrupted) and stays recorded.
 */
export type StepEnding = "succeeded" | "failed" | "left";
