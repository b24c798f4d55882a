/**
 * The Plan: what `apply` will do, step by step, decided before anything runs (DESIGN
 * practice 1). `runflow plan` prints exactly this; the engine executes it; the store keeps
 * it with the run so `retry` can work from it.
 */
import type { PollPolicy, RetryPolicy } from "../workflow/types.js";

/** A step that succeeded in an earlier run, as the state store remembers it. */
export interface ReusableStep {
  runId: string;
  /** `JOB/KEY/STEP` in that run. */
  address: string;
  /** When it finished (ms since the epoch): reuse ends with `cache.ttl`. */
  finishedAt: number;
  requestId?: string;
  output?: Record<string, unknown>;
  files?: Record<string, string | string[]>;
  stdout?: string;
}

/**
 * Which earlier step a planned step takes over: its result stays in that step's record and
 * is read when the takeover happens, so a plan of 50,000 reused steps does not hold 50,000
 * earlier results.
 */
export type ReuseReference = Pick<ReusableStep, "runId" | "address" | "finishedAt" | "requestId">;

/**
 * What earlier runs left behind, as far as planning needs it. The SQLite store implements
 * it; a required argument of planRun, so nobody forgets reuse.
 */
export interface PriorState {
  /** The newest succeeded step of `workflowName` with this fingerprint, if any. */
  findSucceeded(workflowName: string, fingerprint: string): ReusableStep | undefined;
  /**
   * A request an earlier run made for the step at `address` with this fingerprint that may
   * still exist, as it bears on this run; none when absent (no earlier runs).
   */
  unfinished?(workflowName: string, fingerprint: string, address: string): UnfinishedRequest | undefined;
}

/**
 * A request an earlier run made for a step and that may still exist (SPEC §5: never pay twice):
 * - `reattach`: made at this run's API, with an id: polled and collected, never sent again.
 * - `maybe_billed`: made at this run's API, its answer lost: the step is held `unknown`.
 * - `elsewhere`: made at another billing API (or one not recorded) and maybe still running
 *   there: sending it here could pay twice, so the step is held `unknown` too. (A request
 *   at an emulator, or any request while running against one, bills nothing twice: it is
 *   not this kind, and the step is sent.)
 * Held steps are sent only when the user says so (`retry --resubmit-unknown`, or the step's
 * `retry.resubmit_unknown`).
 */
export type UnfinishedRequest =
  | { kind: "reattach"; runId: string; requestId: string; submittedAt: number }
  | { kind: "maybe_billed"; runId: string; attempt: number }
  | { kind: "elsewhere"; runId: string; requestId: string | undefined; apiOrigin: string | undefined };

/**
 * - `submit`: the input is fully known and no earlier success matches: it will be submitted.
 * - `reuse`: an earlier success with the same fingerprint is taken over; nothing is submitted.
 * - `reattach`: an earlier run's request for it is still unfinished: it is collected, not sent.
 * - `unknown`: an earlier submission may exist and be billed (`unfinished` says which): held, not sent.
 * - `deferred`: its input reads a step that has not run yet; decided (submit or reuse) at run time.
 * - `run`: a run step; its fingerprint needs its input files' contents, so it is decided at run time.
 */
export type StepDecision = "submit" | "reuse" | "reattach" | "unknown" | "run" | "deferred";

/**
 * One step of one job instance. Kept lean (a plan may hold 200,000 of them): policies are
 * shared objects, and absent values are left out rather than set to undefined.
 */
export interface PlannedStep {
  /** `JOB/KEY/STEP`: unique within the plan. */
  address: string;
  jobId: string;
  instanceKey: string;
  stepId: string;
  kind: "model" | "run";
  model?: string;
  /** Addresses of the steps this one waits for. */
  dependsOn: string[];
  /**
   * Model steps whose input is not fully known (`deferred`): the input with every template
   * resolved that can be now. References to steps without a result stay as template text;
   * values put in around them are escaped (`$${{`), so `resolveValue(input, context)` with
   * the step results gives the final input.
   */
  input?: Record<string, unknown>;
  /** Model steps whose input is fully known: the exact request body, defaults filled in (no `input` then). */
  body?: Record<string, unknown>;
  /** Run steps: the argument vector (templates as for `input`). */
  argv?: string[];
  /** Run steps: the absolute working folder (template text while pending). */
  cwd?: string;
  /** Run steps: extra environment variables. */
  env?: Record<string, string>;
  /** Run steps: output name → absolute path of the file it produces. */
  outputNames?: Record<string, string>;
  /** Input fields (model steps) or parts (`run`, `cwd`, `env`, `outputs`) known only at run time. */
  deferredFields: string[];
  /** SPEC §5 fingerprint, when the input is fully known (model steps). */
  fingerprint?: string;
  decision: StepDecision;
  reuse?: ReuseReference;
  /** `reattach` and `unknown` steps: the earlier request that decided it. */
  unfinished?: UnfinishedRequest;
  /** Problems of a fully known body found while planning (a reused step's output read by this one). */
  problems?: string[];
  retry: RetryPolicy;
  timeoutMs: number;
  /** Absolute folder of this instance's downloads (the rendered `outputs` template). */
  outputsDir: string;
}

export interface PlanCounts {
  total: number;
  reuse: number;
  submit: number;
  reattach: number;
  unknown: number;
  deferred: number;
  run: number;
}

export interface Plan {
  workflow: {
    name: string;
    /** Absolute path of the workflow file. */
    file: string;
    concurrency: number;
    limits: Record<string, number>;
    poll: PollPolicy;
  };
  runId: string;
  /** When the plan was made (ms since the epoch); `run.date` is derived from it. */
  createdAt: number;
  /** The API origin it is planned against (api/origin.ts), when known. */
  apiOrigin?: string | undefined;
  /** Every planned step; each instance's steps are contiguous and in dependency order. */
  steps: PlannedStep[];
  counts: PlanCounts;
}

export interface PlanOptions {
  runId: string;
  /** Now, in ms since the epoch: decides `run.date` and which earlier successes are within `cache.ttl`. */
  now: number;
  /** Reuse nothing from earlier runs. */
  fresh?: boolean;
  /** The API origin the run is planned against (recorded in the Plan; `prior` is already scoped to it). */
  apiOrigin?: string | undefined;
  /** `JOB` or `JOB/STEP` (repeatable): only these steps, and the steps they depend on. */
  only?: readonly string[];
}
