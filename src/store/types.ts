/**
 * The records of the state store (SPEC §5): runs, their steps, every remote attempt,
 * downloaded outputs and the per-workflow lock, as the port (port.ts) takes and gives them. Timestamps are
 * milliseconds since the epoch, always passed in by the caller (the store has no clock). JSON columns are parsed and serialised here: callers pass and get
 * plain values. There is no field for the API token anywhere.
 */
import type { ReusableStep } from "../plan/types.js";

// The planner owns this shape; the engine builds its PriorState port on the store (prior-runs.ts).
export type { ReusableStep };

/** The step states as stored; must stay equal to the engine's `StepState` (checked in a test). */
export const STORED_STEP_STATES = [
  "pending",
  "waiting",
  "submitting",
  "in_queue",
  "in_progress",
  "downloading",
  "running",
  "succeeded",
  "reused",
  "failed",
  "timed_out",
  "cancelled",
  "unknown",
  "blocked",
  "held",
] as const;
export type StoredStepState = (typeof STORED_STEP_STATES)[number];

/** The life of one remote submission. `submitted` = the API answered with a request id. */
export const AttemptState = {
  submitting: "submitting",
  submitted: "submitted",
  in_queue: "in_queue",
  in_progress: "in_progress",
  succeeded: "succeeded",
  failed: "failed",
  timed_out: "timed_out",
  cancelled: "cancelled",
  /** The submission's answer was lost: the request may exist and be billed. */
  unknown: "unknown",
} as const;
export type AttemptState = (typeof AttemptState)[keyof typeof AttemptState];

/** Attempt states in which the remote request may still exist and run (or be billed). */
export const OPEN_ATTEMPT_STATES: readonly AttemptState[] = [
  AttemptState.submitting,
  AttemptState.submitted,
  AttemptState.in_queue,
  AttemptState.in_progress,
  AttemptState.unknown,
];

export type RunKind = "apply" | "retry";

/** How a finished run ended; equal to the engine's `RunStatus` (checked in a test). */
export type RunOutcome = "succeeded" | "failed" | "interrupted" | "cancelled" | "auth_failed";

/** `running` until `finishRun`; a run left `running` by a dead process was interrupted. */
export type RunStatus = "running" | RunOutcome;

export type StepKind = "model" | "run";

/** How long a model's requests took, as its latest succeeded requests measured it (server times). */
export interface TypicalDuration {
  /** The median duration. */
  ms: number;
  /** How far the durations fall from the median on average; undefined from one duration. */
  spreadMs?: number | undefined;
}

/** Local files of a step by output name: one path, or a list for `videos` / `images`. */
export type StepFiles = Record<string, string | string[]>;

export interface NewRun {
  id: string;
  workflowName: string;
  /** The workflow file as the user named it. */
  workflowFile: string;
  kind: RunKind;
  /** For a retry: the run whose failed steps it re-runs. */
  parentRunId?: string | undefined;
  /** The resolved plan (`retry` runs it again from here). */
  plan: unknown;
  /** The effective options of the command (never the token). */
  options: unknown;
  startedAt: number;
  pid: number;
  hostname: string;
  /**
   * The API it runs against (api/origin.ts): `scheme://host[:port]`, or `emulator` for the
   * in-process one. Undefined records an unknown origin, which nothing is ever matched to.
   */
  apiOrigin?: string | undefined;
}

export interface RunResult {
  status: RunOutcome;
  exitCode: number;
  finishedAt: number;
  /** Steps per state at the end. */
  counts: Record<string, number>;
}

export interface RunRecord {
  id: string;
  workflowName: string;
  workflowFile: string;
  kind: RunKind;
  parentRunId: string | undefined;
  status: RunStatus;
  exitCode: number | undefined;
  options: unknown;
  counts: Record<string, number> | undefined;
  pid: number;
  hostname: string;
  startedAt: number;
  finishedAt: number | undefined;
  /** Set by `cancel`; the live apply of this run notices it and stops. */
  cancelRequestedAt: number | undefined;
  /** The API it ran against; undefined for a run from before origins were recorded. */
  apiOrigin: string | undefined;
  /** The later run that finished every step this one left unfinished (it was interrupted or died). */
  finishedByRun: string | undefined;
}

/** The columns of a step a transition may change. `undefined` leaves a column as it is, `null` clears it. */
export interface StepPatch {
  /** Always set: every write is a change at a known time. */
  updatedAt: number;
  state?: StoredStepState | undefined;
  attempt?: number | undefined;
  fingerprint?: string | null | undefined;
  input?: unknown;
  output?: Record<string, unknown> | null | undefined;
  files?: StepFiles | null | undefined;
  stdout?: string | null | undefined;
  error?: string | null | undefined;
  requestId?: string | null | undefined;
  reusedFromRun?: string | null | undefined;
  queuePosition?: number | null | undefined;
  startedAt?: number | null | undefined;
  finishedAt?: number | null | undefined;
}

/** A step as the plan creates it; a step reused at planning time arrives already `reused`. */
export interface NewStep {
  /** `JOB/KEY/STEP`, unique within a run. */
  address: string;
  jobId: string;
  instanceKey: string;
  stepId: string;
  kind: StepKind;
  model?: string | undefined;
  state: StoredStepState;
  fingerprint?: string | undefined;
  /** The resolved request body (model step) or argument vector (run step), when known. */
  input?: unknown;
  output?: Record<string, unknown> | undefined;
  files?: StepFiles | undefined;
  stdout?: string | undefined;
  requestId?: string | undefined;
  reusedFromRun?: string | undefined;
  finishedAt?: number | undefined;
  /** Its place in the plan; steps are listed in this order (default: the order they were inserted). */
  position?: number | undefined;
}

export interface StepRecord {
  runId: string;
  address: string;
  jobId: string;
  instanceKey: string;
  stepId: string;
  kind: StepKind;
  model: string | undefined;
  state: StoredStepState;
  /** Attempts started so far. */
  attempt: number;
  fingerprint: string | undefined;
  input: unknown;
  output: Record<string, unknown> | undefined;
  files: StepFiles | undefined;
  stdout: string | undefined;
  error: string | undefined;
  /** The request id of the newest attempt (or of the reused step). */
  requestId: string | undefined;
  reusedFromRun: string | undefined;
  queuePosition: number | undefined;
  createdAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  updatedAt: number;
}

export interface StepFilter {
  /** Only steps in one of these states. */
  states?: readonly StoredStepState[] | undefined;
}

export interface AttemptKey {
  runId: string;
  address: string;
  /** 1-based. */
  attempt: number;
}

export interface NewAttempt extends AttemptKey {
  /** Denormalised so resume and reuse find attempts across runs without a join. */
  workflowName: string;
  fingerprint: string;
  startedAt: number;
  /**
   * Set when this attempt re-attaches to a request an earlier run submitted: the attempt
   * starts `submitted` with that id instead of `submitting`, and nothing is sent.
   */
  reattach?: { requestId: string; fromRunId: string } | undefined;
}

export interface AttemptPatch {
  state?: AttemptState | undefined;
  error?: string | null | undefined;
  queuePosition?: number | null | undefined;
  finishedAt?: number | null | undefined;
  /** How long the API says the request took (`finished_at − created_at`), once it succeeded. */
  serverMs?: number | undefined;
  /** What the API reported the request cost, in micro-dollars (never set when it reported none). */
  costMicros?: number | undefined;
}

/** A model's price as read from one API (`GET /v1/models/{id}`), with when it was read. */
export interface PriceRecord {
  apiOrigin: string;
  modelId: string;
  /** Micro-dollars per `unit`. */
  micros: number;
  unit: "second" | "output";
  note: string | undefined;
  readAt: number;
}

export interface AttemptRecord extends AttemptKey {
  workflowName: string;
  fingerprint: string;
  requestId: string | undefined;
  state: AttemptState;
  queuePosition: number | undefined;
  error: string | undefined;
  /** The run this attempt re-attached from, when it did. */
  reattachedFromRun: string | undefined;
  /** The worker whose claim of this attempt won the fence (SPEC §10); undefined when not claimed. */
  claimedBy: string | undefined;
  /** The API it was made at (its run's); undefined when not recorded. */
  apiOrigin: string | undefined;
  startedAt: number;
  submittedAt: number | undefined;
  finishedAt: number | undefined;
}

/**
 * An attempt whose remote request may still exist, and that no later attempt of the same
 * workflow, address and fingerprint has taken over.
 * - `reattach`: it has a request id: poll and collect it, never submit again.
 * - `maybe_billed`: it died between sending the POST and recording an id (or its answer
 *   was lost): report it `unknown`; resubmit only when the user says so.
 */
export interface InFlightAttempt {
  runId: string;
  address: string;
  attempt: number;
  fingerprint: string;
  state: AttemptState;
  requestId: string | undefined;
  disposition: "reattach" | "maybe_billed";
  startedAt: number;
  submittedAt: number | undefined;
  /** The API its request was (or may have been) made at; undefined when not recorded. */
  apiOrigin: string | undefined;
}

export interface NewOutput {
  runId: string;
  address: string;
  /** The output key: `video`, `image`, `videos`, … */
  name: string;
  /** Position in a list output (0-based); undefined for a single value. */
  index?: number | undefined;
  url: string;
  /** Local path of the downloaded file; undefined with --no-download. */
  path?: string | undefined;
  bytes?: number | undefined;
  sha256?: string | undefined;
  createdAt: number;
}

export interface OutputRecord {
  runId: string;
  address: string;
  name: string;
  index: number | undefined;
  url: string;
  path: string | undefined;
  bytes: number | undefined;
  sha256: string | undefined;
  /** The host whose process recorded (downloaded or linked) the file; undefined without a file. */
  host?: string | undefined;
  createdAt: number;
}

/**
 * An input still of a model step (a URL on the user's media host) as the run captured it
 * when the step was submitted: `path` when it was saved, `error` when it was not.
 */
export interface NewInputCapture {
  runId: string;
  /** The input URL, as the request body held it. */
  url: string;
  /** The step that asked for it first (a URL used by several steps is captured once). */
  address: string;
  path?: string | undefined;
  bytes?: number | undefined;
  sha256?: string | undefined;
  /** Why it was not captured. */
  error?: string | undefined;
  createdAt: number;
}

export interface InputCaptureRecord {
  runId: string;
  url: string;
  address: string;
  path: string | undefined;
  bytes: number | undefined;
  sha256: string | undefined;
  error: string | undefined;
  createdAt: number;
}

export interface LockHolder {
  workflowName: string;
  runId: string;
  pid: number;
  hostname: string;
  acquiredAt: number;
  heartbeatAt: number;
}

export interface LockRequest {
  runId: string;
  pid: number;
  hostname: string;
}

export interface LockOptions {
  now: number;
  /** A holder whose heartbeat is older than this is presumed dead. */
  staleAfterMs: number;
  /** Whether a process on this host exists; defaults to `process.kill(pid, 0)`. */
  isProcessAlive?: ((pid: number) => boolean) | undefined;
}

export type LockResult =
  { acquired: true; tookOverFrom?: LockHolder | undefined } | { acquired: false; holder: LockHolder };

/** Which earlier results count: those of one API origin, finished at or after `notBefore` (the cache TTL). */
export interface ReuseScope {
  apiOrigin: string;
  notBefore?: number | undefined;
}

/**
 * How long a worker's heartbeat (sent every second) may be silent before it is taken for
 * dead: its claims judged, its request slots freed, and `status` no longer lists it.
 */
export const WORKER_DEAD_AFTER_MS = 5_000;

/** A worker process (`runflow worker`, or an apply acting as one) as its heartbeat tells (SPEC §10). */
export interface WorkerBeat {
  /** Unique among live workers: `--name`, or host and pid. */
  name: string;
  host: string;
  pid: number;
  startedAt: number;
  /** When this heartbeat was sent. */
  seenAt: number;
  /** The steps it is executing (`RUN address`), for `status`. */
  doing: readonly string[];
}

export type WorkerRecord = WorkerBeat;
