/**
 * Two types for one file (DESIGN practice 3): `WorkflowFile` is what was written (every key
 * optional, names as in YAML), `Workflow` the resolved model (everything required, durations
 * in milliseconds, defaults applied, jobs expanded to instances). Only the loader makes a
 * `Workflow`. test/workflow-schema-drift.test.ts keeps `WorkflowFile` and
 * schemas/workflow.schema.json in step.
 */
import type { SourceLocation } from "../errors.js";
import type { ModelEntry } from "../models/types.js";

/** `500ms`, `10s`, `5m`, `1h`, `6d`, or a number of seconds. */
export type DurationText = string | number;

export interface RetryFile {
  attempts?: number;
  backoff?: DurationText;
  max_backoff?: DurationText;
  resubmit_unknown?: boolean;
}

export interface PollFile {
  interval?: DurationText;
  max_interval?: DurationText;
}

export interface DefaultsFile {
  retry?: RetryFile;
  timeout?: DurationText;
  poll?: PollFile;
}

export interface CacheFile {
  ttl?: DurationText;
}

export interface MatrixFile {
  matrix?: Record<string, unknown[]>;
}

/** A `.csv`/`.jsonl` path, an inline list of items, or a matrix. */
export type ForEachFile = string | Record<string, unknown>[] | MatrixFile;

interface StepFileCommon {
  id?: string;
  name?: string;
  description?: string;
  needs?: string[];
  retry?: RetryFile;
  timeout?: DurationText;
}

export interface ModelStepFile extends StepFileCommon {
  model?: string;
  input?: Record<string, unknown>;
}

/** A run argument or environment value: text (a template), or a number or boolean taken as text. */
export type ArgumentFile = string | number | boolean;

export interface RunStepFile extends StepFileCommon {
  run?: ArgumentFile[];
  cwd?: string;
  env?: Record<string, ArgumentFile>;
  outputs?: Record<string, string>;
}

export type StepFile = ModelStepFile | RunStepFile;

export interface JobFile {
  for_each?: ForEachFile;
  key?: string;
  steps?: StepFile[];
}

/** A workflow file as written (SPEC §4). */
export interface WorkflowFile {
  version?: number;
  name?: string;
  concurrency?: number;
  limits?: Record<string, number>;
  defaults?: DefaultsFile;
  vars?: Record<string, unknown>;
  outputs?: string;
  cache?: CacheFile;
  budget?: BudgetFile;
  jobs?: Record<string, JobFile>;
}

/** `budget:` (SPEC §9). */
export interface BudgetFile {
  /** USD. */
  max_cost?: number;
  /** Per model id: seconds of output a per-second request bills, or USD a request costs. */
  assume?: Record<string, { seconds?: number; usd?: number }>;
}

// ---------------------------------------------------------------------------------------
// The resolved model.

export interface RetryPolicy {
  /** Every attempt counts, the first included. */
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  resubmitUnknown: boolean;
}

export interface PollPolicy {
  /** undefined: the engine's own schedule. */
  intervalMs: number | undefined;
  maxIntervalMs: number | undefined;
}

interface StepCommon {
  id: string;
  name: string | undefined;
  description: string | undefined;
  /** The `needs` as written. */
  needs: string[];
  /** Every step this one waits for: `needs` and the steps its templates read, in declared order. */
  dependsOn: string[];
  retry: RetryPolicy;
  timeoutMs: number;
}

export interface ModelStep extends StepCommon {
  kind: "model";
  model: string;
  /** The model's catalog entry (schema), looked up once by the loader. */
  entry: ModelEntry;
  /** The input as written: templates not yet resolved. */
  input: Record<string, unknown>;
  /** Input fields that read an earlier step: validated right before submission. */
  deferredFields: string[];
}

export interface RunStep extends StepCommon {
  kind: "run";
  /** The argument vector as written (templates unresolved). */
  run: string[];
  /** Relative to the instance's outputs folder; undefined: that folder. */
  cwd: string | undefined;
  env: Record<string, string>;
  /** Named files the program produces, relative to its working folder. */
  outputs: Record<string, string>;
}

export type Step = ModelStep | RunStep;

/** One expansion of a job: one item of its `for_each`. */
export interface JobInstance {
  /** Unique within the job and safe as a folder name. */
  key: string;
  item: Record<string, unknown>;
  /** Where the item was written (a CSV row, a JSONL line, a list entry); undefined for matrix and single instances. */
  origin: SourceLocation | undefined;
}

export interface Job {
  id: string;
  /** Topologically ordered: every step comes after the steps it depends on (declared order otherwise). */
  steps: Step[];
  instances: JobInstance[];
}

/** A validated workflow, ready to plan (SPEC §4 with every default applied). */
export interface Workflow {
  version: 1;
  name: string;
  /** Absolute path of the workflow file. */
  file: string;
  /** Absolute path of the folder holding it: relative paths start here. */
  dir: string;
  concurrency: number;
  limits: Record<string, number>;
  defaults: { retry: RetryPolicy; timeoutMs: number; poll: PollPolicy };
  /** The file's `vars` with `--var` overrides applied. */
  vars: Record<string, unknown>;
  /** The environment variables the templates read (only those; never the token). */
  env: Record<string, string>;
  /** The outputs folder template, relative to `dir`. */
  outputs: string;
  cache: { ttlMs: number };
  /** `budget:`; the cap in micro-dollars when set, and per model what to assume. */
  budget: {
    maxMicros?: number | undefined;
    assume: Record<string, { seconds?: number | undefined; micros?: number | undefined }>;
  };
  jobs: Job[];
}
