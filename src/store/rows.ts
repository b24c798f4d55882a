/**
 * The rows of the state tables as both adapters read them, and their mapping to the port's
 * records. SQLite and PostgreSQL share the column names and meanings (their migrations keep
 * them so); they differ only in how a JSON column arrives: SQLite hands over its text,
 * `pg` the parsed value. Each adapter passes its `JsonColumn` decoder, so one mapping serves
 * both and a new column is added in one place.
 */
import type {
  AttemptRecord,
  AttemptState,
  InFlightAttempt,
  InputCaptureRecord,
  LockHolder,
  OutputRecord,
  ReusableStep,
  RunKind,
  RunRecord,
  RunStatus,
  StepFiles,
  StepKind,
  StepRecord,
  StoredStepState,
  TypicalDuration,
} from "./types.js";

/** How an adapter turns a JSON column's value (`J`, or SQL NULL) into the stored value. */
export type JsonColumn<J> = (value: J | null) => unknown;

/** SQLite: a JSON column is text. */
export const parseJsonText: JsonColumn<string> = (text) => (text === null ? undefined : JSON.parse(text));

/** PostgreSQL (`pg` parses `json` columns): the value as it came. */
export const jsonAsParsed: JsonColumn<unknown> = (value) => value ?? undefined;

export function orUndefined<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}

export interface RunRow<J> {
  id: string;
  workflow_name: string;
  workflow_file: string;
  kind: string;
  parent_run_id: string | null;
  status: string;
  exit_code: number | null;
  options_json: J;
  counts_json: J | null;
  pid: number;
  hostname: string;
  started_at: number;
  finished_at: number | null;
  cancel_requested_at: number | null;
  api_origin: string | null;
  finished_by_run: string | null;
}

export interface StepRow<J> {
  run_id: string;
  address: string;
  job_id: string;
  instance_key: string;
  step_id: string;
  kind: string;
  model: string | null;
  state: string;
  attempt: number;
  fingerprint: string | null;
  input_json: J | null;
  output_json: J | null;
  files_json: J | null;
  stdout: string | null;
  error: string | null;
  request_id: string | null;
  reused_from_run: string | null;
  queue_position: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface AttemptRow {
  run_id: string;
  address: string;
  attempt: number;
  workflow_name: string;
  fingerprint: string;
  request_id: string | null;
  state: string;
  queue_position: number | null;
  error: string | null;
  reattached_from_run: string | null;
  started_at: number;
  submitted_at: number | null;
  finished_at: number | null;
  api_origin: string | null;
  claimed_by: string | null;
}

export interface OutputRow {
  run_id: string;
  address: string;
  name: string;
  idx: number | null;
  url: string;
  path: string | null;
  bytes: number | null;
  sha256: string | null;
  host: string | null;
  created_at: number;
}

export interface InputCaptureRow {
  run_id: string;
  url: string;
  address: string;
  path: string | null;
  bytes: number | null;
  sha256: string | null;
  error: string | null;
  created_at: number;
}

/** A succeeded step as reuse reads it. */
export interface ReusableRow<J> {
  run_id: string;
  address: string;
  finished_at: number;
  request_id: string | null;
  output_json: J | null;
  files_json: J | null;
  stdout: string | null;
}

export interface LockRow {
  workflow_name: string;
  run_id: string;
  pid: number;
  hostname: string;
  acquired_at: number;
  heartbeat_at: number;
}

export function toRunRecord<J>(row: RunRow<J>, json: JsonColumn<J>): RunRecord {
  return {
    id: row.id,
    workflowName: row.workflow_name,
    workflowFile: row.workflow_file,
    kind: row.kind as RunKind,
    parentRunId: orUndefined(row.parent_run_id),
    status: row.status as RunStatus,
    exitCode: orUndefined(row.exit_code),
    options: json(row.options_json),
    counts: json(row.counts_json) as Record<string, number> | undefined,
    pid: row.pid,
    hostname: row.hostname,
    startedAt: row.started_at,
    finishedAt: orUndefined(row.finished_at),
    cancelRequestedAt: orUndefined(row.cancel_requested_at),
    apiOrigin: orUndefined(row.api_origin),
    finishedByRun: orUndefined(row.finished_by_run),
  };
}

export function toStepRecord<J>(row: StepRow<J>, json: JsonColumn<J>): StepRecord {
  return {
    runId: row.run_id,
    address: row.address,
    jobId: row.job_id,
    instanceKey: row.instance_key,
    stepId: row.step_id,
    kind: row.kind as StepKind,
    model: orUndefined(row.model),
    state: row.state as StoredStepState,
    attempt: row.attempt,
    fingerprint: orUndefined(row.fingerprint),
    input: json(row.input_json),
    output: json(row.output_json) as Record<string, unknown> | undefined,
    files: json(row.files_json) as StepFiles | undefined,
    stdout: orUndefined(row.stdout),
    error: orUndefined(row.error),
    requestId: orUndefined(row.request_id),
    reusedFromRun: orUndefined(row.reused_from_run),
    queuePosition: orUndefined(row.queue_position),
    createdAt: row.created_at,
    startedAt: orUndefined(row.started_at),
    finishedAt: orUndefined(row.finished_at),
    updatedAt: row.updated_at,
  };
}

export function toAttemptRecord(row: AttemptRow): AttemptRecord {
  return {
    runId: row.run_id,
    address: row.address,
    attempt: row.attempt,
    workflowName: row.workflow_name,
    fingerprint: row.fingerprint,
    requestId: orUndefined(row.request_id),
    state: row.state as AttemptState,
    queuePosition: orUndefined(row.queue_position),
    error: orUndefined(row.error),
    reattachedFromRun: orUndefined(row.reattached_from_run),
    claimedBy: orUndefined(row.claimed_by),
    startedAt: row.started_at,
    submittedAt: orUndefined(row.submitted_at),
    finishedAt: orUndefined(row.finished_at),
    apiOrigin: orUndefined(row.api_origin),
  };
}

/** An open attempt: one with an id is re-attached to, one without may have been billed. */
export function toInFlight(
  row: Pick<
    AttemptRow,
    | "run_id"
    | "address"
    | "attempt"
    | "fingerprint"
    | "state"
    | "request_id"
    | "started_at"
    | "submitted_at"
    | "api_origin"
  >,
): InFlightAttempt {
  return {
    runId: row.run_id,
    address: row.address,
    attempt: row.attempt,
    fingerprint: row.fingerprint,
    state: row.state as AttemptState,
    requestId: orUndefined(row.request_id),
    disposition: row.request_id === null ? "maybe_billed" : "reattach",
    startedAt: row.started_at,
    submittedAt: orUndefined(row.submitted_at),
    apiOrigin: orUndefined(row.api_origin),
  };
}

export function toOutputRecord(row: OutputRow): OutputRecord {
  return {
    runId: row.run_id,
    address: row.address,
    name: row.name,
    index: orUndefined(row.idx),
    url: row.url,
    path: orUndefined(row.path),
    bytes: orUndefined(row.bytes),
    sha256: orUndefined(row.sha256),
    host: orUndefined(row.host),
    createdAt: row.created_at,
  };
}

export function toInputCaptureRecord(row: InputCaptureRow): InputCaptureRecord {
  return {
    runId: row.run_id,
    url: row.url,
    address: row.address,
    path: orUndefined(row.path),
    bytes: orUndefined(row.bytes),
    sha256: orUndefined(row.sha256),
    error: orUndefined(row.error),
    createdAt: row.created_at,
  };
}

/** Only the fields that are there: a reused step's record says nothing of what it lacks. */
export function toReusableStep<J>(row: ReusableRow<J>, json: JsonColumn<J>): ReusableStep {
  const reusable: ReusableStep = { runId: row.run_id, address: row.address, finishedAt: row.finished_at };
  if (row.request_id !== null) reusable.requestId = row.request_id;
  const output = json(row.output_json) as Record<string, unknown> | undefined;
  if (output !== undefined) reusable.output = output;
  const files = json(row.files_json) as StepFiles | undefined;
  if (files !== undefined) reusable.files = files;
  if (row.stdout !== null) reusable.stdout = row.stdout;
  return reusable;
}

export function toLockHolder(row: LockRow): LockHolder {
  return {
    workflowName: row.workflow_name,
    runId: row.run_id,
    pid: row.pid,
    hostname: row.hostname,
    acquiredAt: row.acquired_at,
    heartbeatAt: row.heartbeat_at,
  };
}

/**
 * A model's typical duration from its latest server-measured durations: the median (one slow
 * request does not move it), and the mean distance from it (how soon to look again at a
 * request not done at the median); undefined without any.
 */
export function toTypicalDuration(durations: readonly number[]): TypicalDuration | undefined {
  if (durations.length === 0) return undefined;
  const sorted = [...durations].sort((a, b) => a - b);
  const ms = sorted[Math.floor((sorted.length - 1) / 2)]!;
  if (sorted.length === 1) return { ms };
  const spreadMs = sorted.reduce((sum, duration) => sum + Math.abs(duration - ms), 0) / sorted.length;
  return { ms, spreadMs: Math.round(spreadMs) };
}
