import { existsSync, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { isRunflowError } from "../errors.js";
import {
  cannotOpenError,
  commitFailedError,
  explainSqliteError,
  missingStateError,
  newerSchemaError,
  notADatabaseError,
} from "./errors.js";
import { commitOpenGroups, GroupCommit } from "./group-commit.js";
import { decideLock, isProcessAlive } from "./lock.js";
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion } from "./migrations.js";
import { SqliteBudgets } from "./sqlite-budgets.js";
import { makeRedactor, tokensFromEnvironment, type Redactor } from "./redact.js";
import type { CostTotal } from "../cost/money.js";
import { OPEN_ATTEMPT_STATES } from "./types.js";
import type {
  PriceRecord,
  AttemptKey,
  AttemptPatch,
  AttemptRecord,
  InFlightAttempt,
  LockHolder,
  LockOptions,
  LockRequest,
  LockResult,
  NewAttempt,
  InputCaptureRecord,
  NewInputCapture,
  NewOutput,
  NewRun,
  NewStep,
  OutputRecord,
  ReusableStep,
  ReuseScope,
  RunRecord,
  RunResult,
  StepFilter,
  StepPatch,
  StepRecord,
  StoredStepState,
  TypicalDuration,
  WorkerBeat,
  WorkerRecord,
} from "./types.js";

import * as Rows from "./rows.js";
import {
  parseJsonText,
  toAttemptRecord,
  toInFlight,
  toInputCaptureRecord,
  toLockHolder,
  toOutputRecord,
  toTypicalDuration,
  type AttemptRow,
  type InputCaptureRow,
  type LockRow,
  type OutputRow,
} from "./rows.js";

export interface SqliteStoreOptions {
  /** Open for reading only (status, runs, report); the file must exist. Default false. */
  readonly?: boolean | undefined;
  /**
   * With `readonly`: not even an older schema is upgraded in the file (`plan` writes nothing);
   * an older database is read from a copy upgraded in memory instead.
   */
  neverWrite?: boolean | undefined;
  /** How long a write waits for another process's transaction before failing. Default 10 s. */
  busyTimeoutMs?: number | undefined;
  /**
   * Values never written to the file: any occurrence in stored text becomes `[redacted]`.
   * Default: the API token from RUNCOMFY_API_TOKEN / YOUR_API_TOKEN.
   */
  secrets?: readonly string[] | undefined;
}

const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
/** How long the database goes without a write before its WAL is checkpointed (`#checkpointWhenIdle`). */
export const IDLE_CHECKPOINT_MS = 250;

/**
 * Opens (creating when needed) the state database at `path`: WAL journal, `synchronous =
 * NORMAL` (a commit survives a crash of the process; only an OS crash or power loss can
 * lose the last ones), foreign keys, a busy timeout so concurrent processes wait their
 * turn, and every pending migration.
 */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  const readonly = options.readonly ?? false;
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const inMemory = path === ":memory:";
  if (readonly && !inMemory && !existsSync(path)) throw missingStateError(path);
  if (!readonly && !inMemory) mkdirSync(dirname(path), { recursive: true });

  if (readonly && options.neverWrite) {
    const copy = upgradedCopyIfOlder(path, busyTimeoutMs);
    if (copy)
      return new SqliteStore(copy, path, makeRedactor(options.secrets ?? tokensFromEnvironment(process.env)));
  }
  const db = readonly ? connectForReading(path, busyTimeoutMs) : connect(path, { readonly, busyTimeoutMs });
  try {
    if (!readonly) prepareForWriting(db, path);
    const redact = makeRedactor(options.secrets ?? tokensFromEnvironment(process.env));
    return new SqliteStore(db, path, redact);
  } catch (error) {
    db.close();
    throw explainOpenError(path, error);
  }
}

/**
 * A read-only connection. It cannot migrate: an older database is brought up to date first
 * by a writing connection, then opened again. One of the current version (the usual case)
 * is read through the connection that read its version (`status` opens the file once).
 */
function connectForReading(path: string, busyTimeoutMs: number): Database.Database {
  const db = connect(path, { readonly: true, busyTimeoutMs });
  let version: number;
  try {
    version = schemaVersion(db);
  } catch (error) {
    db.close();
    throw explainOpenError(path, error);
  }
  if (version === LATEST_SCHEMA_VERSION) return db;
  db.close();
  if (version > LATEST_SCHEMA_VERSION) throw newerSchemaError(path, version, LATEST_SCHEMA_VERSION);
  withDatabase(path, { readonly: false, busyTimeoutMs }, (writer) => prepareForWriting(writer, path));
  return connect(path, { readonly: true, busyTimeoutMs });
}

/** An older database, copied into memory and upgraded there; undefined when it is up to date. */
function upgradedCopyIfOlder(path: string, busyTimeoutMs: number): Database.Database | undefined {
  const snapshot = withDatabase(path, { readonly: true, busyTimeoutMs }, (db) => {
    const version = schemaVersion(db);
    if (version > LATEST_SCHEMA_VERSION) throw newerSchemaError(path, version, LATEST_SCHEMA_VERSION);
    return version < LATEST_SCHEMA_VERSION ? db.serialize() : undefined;
  });
  if (!snapshot) return undefined;
  // The header's file format bytes say WAL, which a database in memory cannot be: rollback.
  snapshot[18] = 1;
  snapshot[19] = 1;
  const copy = new Database(snapshot);
  try {
    copy.pragma("foreign_keys = ON");
    migrate(copy, path);
    return copy;
  } catch (error) {
    copy.close();
    throw explainOpenError(path, error);
  }
}

interface ConnectOptions {
  readonly: boolean;
  busyTimeoutMs: number;
}

function connect(path: string, { readonly, busyTimeoutMs }: ConnectOptions): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly });
  } catch (error) {
    throw explainOpenError(path, error);
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    // The first read of the header is where a file that is not a database shows itself.
    schemaVersion(db);
    db.pragma("foreign_keys = ON");
    return db;
  } catch (error) {
    db.close();
    throw explainOpenError(path, error);
  }
}

function withDatabase<T>(path: string, options: ConnectOptions, use: (db: Database.Database) => T): T {
  const db = connect(path, options);
  try {
    return use(db);
  } catch (error) {
    throw explainOpenError(path, error);
  } finally {
    db.close();
  }
}

function prepareForWriting(db: Database.Database, path: string): void {
  // A migration waits for the write lock: a group open on another connection of this
  // process would hold it until this thread, busy waiting here, let it commit.
  commitOpenGroups();
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  migrate(db, path);
}

function explainOpenError(path: string, error: unknown): Error {
  if (isRunflowError(error)) return error;
  const code = (error as { code?: unknown }).code;
  // At open, a damaged header is most likely a file that never was a runflow database.
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") return notADatabaseError(path, error);
  const explained = explainSqliteError(path, error);
  return isRunflowError(explained) ? explained : cannotOpenError(path, error);
}

// ---------------------------------------------------------------------------------------
// Rows as SQLite returns them, and their conversion to records.

type RunRow = Rows.RunRow<string>;
/** A step's row as SQLite keeps it: its place in the plan orders the listings. */
type StepRow = Rows.StepRow<string> & { position: number | null };
type ReusableRow = Rows.ReusableRow<string>;

function parseJson<T>(text: string | null): T | undefined {
  return parseJsonText(text) as T | undefined;
}

const toRunRecord = (row: RunRow) => Rows.toRunRecord(row, parseJsonText);
const toStepRecord = (row: StepRow) => Rows.toStepRecord(row, parseJsonText);
const toReusableStep = (row: ReusableRow) => Rows.toReusableStep(row, parseJsonText);

// ---------------------------------------------------------------------------------------
// Every query, prepared once.

/** SQLite binds no booleans: a patch column is written when its flag is 1. */
type Flag = 0 | 1;

interface StepPatchParams {
  run_id: string;
  address: string;
  updated_at: number;
  state: string | null;
  attempt: number | null;
  set_fingerprint: Flag;
  fingerprint: string | null;
  set_input: Flag;
  input_json: string | null;
  set_output: Flag;
  output_json: string | null;
  set_files: Flag;
  files_json: string | null;
  set_stdout: Flag;
  stdout: string | null;
  set_error: Flag;
  error: string | null;
  set_request_id: Flag;
  request_id: string | null;
  set_reused_from_run: Flag;
  reused_from_run: string | null;
  set_queue_position: Flag;
  queue_position: number | null;
  set_started_at: Flag;
  started_at: number | null;
  set_finished_at: Flag;
  finished_at: number | null;
}

interface AttemptPatchParams {
  run_id: string;
  address: string;
  attempt: number;
  state: string | null;
  set_error: Flag;
  error: string | null;
  set_queue_position: Flag;
  queue_position: number | null;
  set_finished_at: Flag;
  finished_at: number | null;
  server_ms: number | null;
  cost_micros: number | null;
}

/** How many of a model's latest succeeded requests its typical duration is the median of. */
const TYPICAL_SAMPLE = 20;

// Written exactly as in the attempts_open partial index, so that SQLite uses it.
const OPEN_STATES_SQL = `(${OPEN_ATTEMPT_STATES.map((state) => `'${state}'`).join(", ")})`;

// The newest attempt of a (workflow, address, fingerprint) at an API origin speaks for it: a
// later attempt there re-attached to this one's request, or deliberately resubmitted it. An
// attempt at another origin takes nothing over: a request left running at RunComfy is still
// there to collect after a run against the emulator.
const IN_FLIGHT_WHERE = `
  a.state IN ${OPEN_STATES_SQL}
  AND NOT EXISTS (
    SELECT 1 FROM attempts later
    WHERE later.workflow_name = a.workflow_name AND later.fingerprint = a.fingerprint
      AND later.address = a.address AND later.seq > a.seq AND later.api_origin IS a.api_origin)`;

const ATTEMPT_COLUMNS = `a.run_id, a.address, a.attempt, a.workflow_name, a.fingerprint, a.request_id, a.state,
  a.queue_position, a.error, a.reattached_from_run, a.started_at, a.submitted_at, a.finished_at, a.api_origin,
  a.claimed_by`;

// Steps a run left before their end: what a later run may finish for it.
const UNFINISHED_STEP_STATES_SQL =
  "('pending', 'waiting', 'submitting', 'in_queue', 'in_progress', 'downloading', 'running')";

function prepareStatements(db: Database.Database) {
  return {
    insertRun: db.prepare<{
      id: string;
      workflow_name: string;
      workflow_file: string;
      kind: string;
      parent_run_id: string | null;
      plan_json: string;
      options_json: string;
      pid: number;
      hostname: string;
      started_at: number;
      api_origin: string | null;
    }>(
      `INSERT INTO runs (id, workflow_name, workflow_file, kind, parent_run_id, plan_json, options_json, pid,
         hostname, started_at, api_origin)
       VALUES (@id, @workflow_name, @workflow_file, @kind, @parent_run_id, @plan_json, @options_json, @pid,
         @hostname, @started_at, @api_origin)`,
    ),
    // Runs of the same workflow and origin left unfinished, each of whose unfinished steps
    // succeeded (or was reused) in run ?1. Their steps are read through the primary key.
    closeRunsFinishedBy: db.prepare<{ run: string }, { id: string }>(
      `UPDATE runs AS old SET finished_by_run = @run
       FROM (SELECT workflow_name, api_origin, started_at FROM runs WHERE id = @run) AS new
       WHERE old.workflow_name = new.workflow_name AND old.api_origin = new.api_origin
         AND old.id <> @run AND old.started_at <= new.started_at AND old.finished_by_run IS NULL
         AND old.status IN ('running', 'interrupted')
         AND EXISTS (SELECT 1 FROM steps s WHERE s.run_id = old.id AND s.state IN ${UNFINISHED_STEP_STATES_SQL})
         AND NOT EXISTS (
           SELECT 1 FROM steps s WHERE s.run_id = old.id AND s.state IN ${UNFINISHED_STEP_STATES_SQL}
             AND NOT EXISTS (
               SELECT 1 FROM steps done WHERE done.run_id = @run AND done.address = s.address
                 AND done.state IN ('succeeded', 'reused')))
       RETURNING id`,
    ),
    finishRun: db.prepare<[string, number, number, string, string]>(
      `UPDATE runs SET status = ?, exit_code = ?, finished_at = ?, counts_json = ? WHERE id = ?`,
    ),
    requestCancel: db.prepare<[number, string]>(
      `UPDATE runs SET cancel_requested_at = coalesce(cancel_requested_at, ?) WHERE id = ?`,
    ),
    getRun: db.prepare<[string], RunRow>(`SELECT * FROM runs WHERE id = ?`),
    getRunPlan: db.prepare<[string], { plan_json: string }>(`SELECT plan_json FROM runs WHERE id = ?`),
    insertRunPlanPart: db.prepare<[string, number, string]>(
      `INSERT INTO run_plan_parts (run_id, part, steps_json) VALUES (?, ?, ?)`,
    ),
    getRunPlanParts: db.prepare<[string, number], { steps_json: string }>(
      `SELECT steps_json FROM run_plan_parts WHERE run_id = ? AND part >= ? ORDER BY part`,
    ),
    latestRun: db.prepare<[], RunRow>(`SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1`),
    latestRunOfWorkflow: db.prepare<[string], RunRow>(
      `SELECT * FROM runs WHERE workflow_name = ? ORDER BY started_at DESC, rowid DESC LIMIT 1`,
    ),
    listRuns: db.prepare<[number], RunRow>(`SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?`),
    listRunsOfWorkflow: db.prepare<[string, number], RunRow>(
      `SELECT * FROM runs WHERE workflow_name = ? ORDER BY started_at DESC, rowid DESC LIMIT ?`,
    ),

    insertStep: db.prepare<Omit<StepRow, "error" | "queue_position" | "started_at">>(
      `INSERT INTO steps (run_id, address, job_id, instance_key, step_id, kind, model, state, attempt, fingerprint,
         input_json, output_json, files_json, stdout, request_id, reused_from_run, created_at, finished_at, updated_at,
         position)
       VALUES (@run_id, @address, @job_id, @instance_key, @step_id, @kind, @model, @state, @attempt, @fingerprint,
         @input_json, @output_json, @files_json, @stdout, @request_id, @reused_from_run, @created_at, @finished_at,
         @updated_at, @position)`,
    ),
    setRunPlan: db.prepare<[string, string]>(`UPDATE runs SET plan_json = ? WHERE id = ?`),
    unfinishedInstances: db.prepare<[string], { instance: string }>(
      `SELECT DISTINCT job_id || '/' || instance_key AS instance FROM steps
       WHERE run_id = ? AND state NOT IN ('succeeded', 'reused')`,
    ),
    updateStep: db.prepare<StepPatchParams>(
      `UPDATE steps SET
         updated_at      = @updated_at,
         state           = coalesce(@state, state),
         attempt         = coalesce(@attempt, attempt),
         fingerprint     = CASE WHEN @set_fingerprint THEN @fingerprint ELSE fingerprint END,
         input_json      = CASE WHEN @set_input THEN @input_json ELSE input_json END,
         output_json     = CASE WHEN @set_output THEN @output_json ELSE output_json END,
         files_json      = CASE WHEN @set_files THEN @files_json ELSE files_json END,
         stdout          = CASE WHEN @set_stdout THEN @stdout ELSE stdout END,
         error           = CASE WHEN @set_error THEN @error ELSE error END,
         request_id      = CASE WHEN @set_request_id THEN @request_id ELSE request_id END,
         reused_from_run = CASE WHEN @set_reused_from_run THEN @reused_from_run ELSE reused_from_run END,
         queue_position  = CASE WHEN @set_queue_position THEN @queue_position ELSE queue_position END,
         started_at      = CASE WHEN @set_started_at THEN @started_at ELSE started_at END,
         finished_at     = CASE WHEN @set_finished_at THEN @finished_at ELSE finished_at END
       WHERE run_id = @run_id AND address = @address`,
    ),
    getStep: db.prepare<[string, string], StepRow>(`SELECT * FROM steps WHERE run_id = ? AND address = ?`),
    getSteps: db.prepare<[string], StepRow>(`SELECT * FROM steps WHERE run_id = ? ORDER BY position, rowid`),
    getStepsInStates: db.prepare<[string, string], StepRow>(
      `SELECT * FROM steps WHERE run_id = ? AND state IN (SELECT value FROM json_each(?))
       ORDER BY position, rowid`,
    ),
    countStepsByState: db.prepare<[string], { state: string; count: number }>(
      `SELECT state, count(*) AS count FROM steps WHERE run_id = ? GROUP BY state`,
    ),
    mirrorAttemptOnStep: db.prepare<[number, string | null, number, string, string]>(
      `UPDATE steps SET attempt = ?, request_id = ?, updated_at = ? WHERE run_id = ? AND address = ?`,
    ),
    mirrorRequestIdOnStep: db.prepare<[string, number, string, string, number]>(
      `UPDATE steps SET request_id = ?, updated_at = ? WHERE run_id = ? AND address = ? AND attempt = ?`,
    ),

    insertAttempt: db.prepare<{
      run_id: string;
      address: string;
      attempt: number;
      workflow_name: string;
      fingerprint: string;
      request_id: string | null;
      state: string;
      reattached_from_run: string | null;
      started_at: number;
      submitted_at: number | null;
    }>(
      // An attempt is made at its run's API origin.
      `INSERT INTO attempts (run_id, address, attempt, workflow_name, fingerprint, request_id, state,
         reattached_from_run, started_at, submitted_at, api_origin)
       VALUES (@run_id, @address, @attempt, @workflow_name, @fingerprint, @request_id, @state,
         @reattached_from_run, @started_at, @submitted_at, (SELECT api_origin FROM runs WHERE id = @run_id))`,
    ),
    recordRequestId: db.prepare<[string, number, string, string, number]>(
      `UPDATE attempts
       SET request_id = ?, submitted_at = ?, state = CASE WHEN state = 'submitting' THEN 'submitted' ELSE state END
       WHERE run_id = ? AND address = ? AND attempt = ?`,
    ),
    claimAttempt: db.prepare<[string, string, string, number]>(
      `UPDATE attempts SET claimed_by = ? WHERE run_id = ? AND address = ? AND attempt = ?`,
    ),
    recordClaimedRequestId: db.prepare<[string, number, string, string, number, string]>(
      `UPDATE attempts SET request_id = ?, submitted_at = ?, state = 'submitted'
       WHERE run_id = ? AND address = ? AND attempt = ? AND claimed_by = ?
         AND state = 'submitting' AND request_id IS NULL`,
    ),
    abandonAttempt: db.prepare<[string, number, string, string, number]>(
      `UPDATE attempts SET state = 'unknown', error = ?, finished_at = ?
       WHERE run_id = ? AND address = ? AND attempt = ? AND state = 'submitting' AND request_id IS NULL`,
    ),
    attemptExists: db.prepare<[string, string, number], { one: number }>(
      `SELECT 1 AS one FROM attempts WHERE run_id = ? AND address = ? AND attempt = ?`,
    ),
    beatWorker: db.prepare<[string, string, number, number, number, string]>(
      `INSERT INTO workers (name, host, pid, started_at, seen_at, doing) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,
         started_at = excluded.started_at, seen_at = excluded.seen_at, doing = excluded.doing`,
    ),
    leaveWorker: db.prepare<[string]>(`DELETE FROM workers WHERE name = ?`),
    listWorkers: db.prepare<
      [number],
      { name: string; host: string; pid: number; started_at: number; seen_at: number; doing: string }
    >(`SELECT name, host, pid, started_at, seen_at, doing FROM workers WHERE seen_at >= ? ORDER BY name`),
    updateAttempt: db.prepare<AttemptPatchParams>(
      `UPDATE attempts SET
         state          = coalesce(@state, state),
         error          = CASE WHEN @set_error THEN @error ELSE error END,
         queue_position = CASE WHEN @set_queue_position THEN @queue_position ELSE queue_position END,
         finished_at    = CASE WHEN @set_finished_at THEN @finished_at ELSE finished_at END,
         server_ms      = coalesce(@server_ms, server_ms),
         cost_micros    = coalesce(@cost_micros, cost_micros)
       WHERE run_id = @run_id AND address = @address AND attempt = @attempt`,
    ),
    // Billed with no cost reported: ended after its request existed (or maybe existed), no cost.
    costByAddress: db.prepare<
      [string],
      { address: string; micros: number | null; known: number; unknown: number }
    >(
      `SELECT address, sum(cost_micros) AS micros, count(cost_micros) AS known,
         sum(cost_micros IS NULL AND (state = 'unknown'
           OR (request_id IS NOT NULL AND state IN ('succeeded', 'failed', 'timed_out')))) AS unknown
       FROM attempts WHERE run_id = ? GROUP BY address`,
    ),
    recentCosts: db.prepare<[string, string, number], { cost_micros: number }>(
      `SELECT a.cost_micros FROM attempts a JOIN steps s ON s.run_id = a.run_id AND s.address = a.address
       WHERE s.model = ? AND a.api_origin = ? AND a.state = 'succeeded' AND a.cost_micros IS NOT NULL
       ORDER BY a.seq DESC LIMIT ?`,
    ),
    upsertPrice: db.prepare<[string, string, number, string, string | null, number]>(
      `INSERT INTO model_prices (api_origin, model_id, micros, unit, note, read_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (api_origin, model_id) DO UPDATE SET
         micros = excluded.micros, unit = excluded.unit, note = excluded.note, read_at = excluded.read_at`,
    ),
    pricesAt: db.prepare<
      [string],
      { model_id: string; micros: number; unit: "second" | "output"; note: string | null; read_at: number }
    >(`SELECT model_id, micros, unit, note, read_at FROM model_prices WHERE api_origin = ?`),
    recentServerDurations: db.prepare<[string, string, number], { server_ms: number }>(
      `SELECT a.server_ms FROM attempts a JOIN steps s ON s.run_id = a.run_id AND s.address = a.address
       WHERE s.model = ? AND a.api_origin = ? AND a.server_ms IS NOT NULL ORDER BY a.seq DESC LIMIT ?`,
    ),
    getAttemptsOfRun: db.prepare<[string], AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts a WHERE a.run_id = ? ORDER BY a.seq`,
    ),
    getAttemptsOfStep: db.prepare<[string, string], AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts a WHERE a.run_id = ? AND a.address = ? ORDER BY a.seq`,
    ),
    findInFlight: db.prepare<[string, string], AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts a
       WHERE a.workflow_name = ? AND a.fingerprint = ? AND ${IN_FLIGHT_WHERE}
       ORDER BY a.seq DESC LIMIT 1`,
    ),
    findInFlightAt: db.prepare<[string, string, string], AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts a
       WHERE a.workflow_name = ? AND a.fingerprint = ? AND a.address = ? AND ${IN_FLIGHT_WHERE}
       ORDER BY a.seq DESC LIMIT 1`,
    ),
    inFlightAt: db.prepare<[string, string, string], AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts a
       WHERE a.workflow_name = ? AND a.fingerprint = ? AND a.address = ? AND ${IN_FLIGHT_WHERE}
       ORDER BY a.seq DESC`,
    ),
    listInFlight: db.prepare<[string], AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts a WHERE a.workflow_name = ? AND ${IN_FLIGHT_WHERE} ORDER BY a.seq`,
    ),

    upsertOutput: db.prepare<OutputRow>(
      `INSERT INTO outputs (run_id, address, name, idx, url, path, bytes, sha256, host, created_at)
       VALUES (@run_id, @address, @name, @idx, @url, @path, @bytes, @sha256, @host, @created_at)
       ON CONFLICT (run_id, address, name, coalesce(idx, -1)) DO UPDATE SET
         url = excluded.url, path = excluded.path, bytes = excluded.bytes, sha256 = excluded.sha256,
         host = excluded.host, created_at = excluded.created_at`,
    ),
    // In plan order (the steps' order), not the order the steps finished in.
    getOutputsOfRun: db.prepare<[string], OutputRow>(
      `SELECT o.* FROM outputs o JOIN steps s ON s.run_id = o.run_id AND s.address = o.address
       WHERE o.run_id = ? ORDER BY s.position, s.rowid, o.rowid`,
    ),
    getOutputsOfStep: db.prepare<[string, string], OutputRow>(
      `SELECT * FROM outputs WHERE run_id = ? AND address = ? ORDER BY rowid`,
    ),

    upsertInputCapture: db.prepare<InputCaptureRow>(
      `INSERT INTO input_captures (run_id, url, address, path, bytes, sha256, error, created_at)
       VALUES (@run_id, @url, @address, @path, @bytes, @sha256, @error, @created_at)
       ON CONFLICT (run_id, url) DO UPDATE SET
         address = excluded.address, path = excluded.path, bytes = excluded.bytes,
         sha256 = excluded.sha256, error = excluded.error, created_at = excluded.created_at`,
    ),
    getInputCapturesOfRun: db.prepare<[string], InputCaptureRow>(
      `SELECT * FROM input_captures WHERE run_id = ? ORDER BY rowid`,
    ),

    // Only originals are reuse sources: a reused copy would restart the retention clock
    // of remote URLs that are as old as the original. CROSS JOIN keeps the (selective)
    // fingerprint index as the outer loop however many runs there are.
    findSucceeded: db.prepare<[string, string, string, number], ReusableRow>(
      `SELECT s.run_id, s.address, coalesce(s.finished_at, s.updated_at) AS finished_at, s.request_id,
         s.output_json, s.files_json, s.stdout
       FROM steps s CROSS JOIN runs r ON r.id = s.run_id
       WHERE s.state = 'succeeded' AND s.fingerprint = ? AND r.workflow_name = ? AND r.api_origin = ?
         AND coalesce(s.finished_at, s.updated_at) >= ?
       ORDER BY coalesce(s.finished_at, s.updated_at) DESC, s.rowid DESC LIMIT 1`,
    ),

    getLock: db.prepare<[string], LockRow>(`SELECT * FROM locks WHERE workflow_name = ?`),
    upsertLock: db.prepare<LockRow>(
      `INSERT INTO locks (workflow_name, run_id, pid, hostname, acquired_at, heartbeat_at)
       VALUES (@workflow_name, @run_id, @pid, @hostname, @acquired_at, @heartbeat_at)
       ON CONFLICT (workflow_name) DO UPDATE SET run_id = excluded.run_id, pid = excluded.pid,
         hostname = excluded.hostname, acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at`,
    ),
    heartbeat: db.prepare<[number, string, string]>(
      `UPDATE locks SET heartbeat_at = ? WHERE workflow_name = ? AND run_id = ?`,
    ),
    releaseLock: db.prepare<[string, string]>(`DELETE FROM locks WHERE workflow_name = ? AND run_id = ?`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Splits a patch value into "write it?" and the value to write (`null` clears). */
function patchColumn<T, R>(value: T | null | undefined, encode: (v: T) => R): [Flag, R | null] {
  if (value === undefined) return [0, null];
  return [1, value === null ? null : encode(value)];
}

const asIs = <T>(value: T): T => value;

function isThenable(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/**
 * The synchronous database layer on one SQLite connection: each method is one prepared
 * query (or one transaction of them). The engine reaches it only through the port's SQLite
 * adapter (sqlite-state-store.ts), which adds group commit and its promises; tests use it
 * directly to seed and inspect a state file.
 */
export class SqliteStore {
  readonly path: string;
  readonly readonly: boolean;
  readonly #db: Database.Database;
  readonly #sql: Statements;
  readonly #redact: Redactor;
  readonly #group: GroupCommit;
  /** Depth of `transaction()` calls in progress. */
  #transactionDepth = 0;
  /** Runs' budgets (sqlite-budgets.ts). */
  readonly budgets: SqliteBudgets;
  /** Armed by every write, fired once writes pause (`#checkpointWhenIdle`). */
  #idleCheckpoint: NodeJS.Timeout | undefined;

  constructor(db: Database.Database, path: string, redact: Redactor) {
    this.#db = db;
    this.path = path;
    this.readonly = db.readonly;
    this.#sql = prepareStatements(db);
    this.#redact = redact;
    this.#group = new GroupCommit(db, (cause) => commitFailedError(path, cause));
    this.budgets = new SqliteBudgets(db, (fn) => this.transaction(fn));
  }

  // Runs

  createRun(run: NewRun): void {
    this.#beforeWrite();
    this.#sql.insertRun.run({
      id: run.id,
      workflow_name: run.workflowName,
      workflow_file: run.workflowFile,
      kind: run.kind,
      parent_run_id: run.parentRunId ?? null,
      plan_json: this.#json(run.plan) ?? "null",
      options_json: this.#json(run.options) ?? "null",
      pid: run.pid,
      hostname: run.hostname,
      started_at: run.startedAt,
      api_origin: run.apiOrigin ?? null,
    });
  }

  finishRun(runId: string, result: RunResult): void {
    this.#beforeWrite();
    const { changes } = this.#sql.finishRun.run(
      result.status,
      result.exitCode,
      result.finishedAt,
      JSON.stringify(result.counts),
      runId,
    );
    if (changes === 0) throw new Error(`finishRun: no run ${runId}`);
  }

  getRun(runId: string): RunRecord | undefined {
    const row = this.#sql.getRun.get(runId);
    return row && toRunRecord(row);
  }

  latestRun(workflowName?: string): RunRecord | undefined {
    const row =
      workflowName === undefined
        ? this.#sql.latestRun.get()
        : this.#sql.latestRunOfWorkflow.get(workflowName);
    return row && toRunRecord(row);
  }

  listRuns({ limit, workflowName }: { limit: number; workflowName?: string | undefined }): RunRecord[] {
    const rows =
      workflowName === undefined
        ? this.#sql.listRuns.all(limit)
        : this.#sql.listRunsOfWorkflow.all(workflowName, limit);
    return rows.map(toRunRecord);
  }

  getRunPlan(runId: string): unknown {
    return parseJson<unknown>(this.#sql.getRunPlan.get(runId)?.plan_json ?? null);
  }

  setRunPlan(runId: string, plan: unknown): void {
    this.#beforeWrite();
    const { changes } = this.#sql.setRunPlan.run(this.#json(plan) ?? "null", runId);
    if (changes === 0) throw new Error(`setRunPlan: no run ${runId}`);
  }

  unfinishedInstances(runId: string): Set<string> {
    return new Set(this.#sql.unfinishedInstances.all(runId).map((row) => row.instance));
  }

  addRunPlanPart(runId: string, part: number, steps: unknown): void {
    this.#beforeWrite();
    this.#sql.insertRunPlanPart.run(runId, part, this.#json(steps) ?? "null");
  }

  getRunPlanParts(runId: string, fromPart = 0): unknown[] {
    return this.#sql.getRunPlanParts.all(runId, fromPart).map((row) => parseJson<unknown>(row.steps_json));
  }

  requestCancel(runId: string, at: number): void {
    this.#beforeWrite();
    const { changes } = this.#sql.requestCancel.run(at, runId);
    if (changes === 0) throw new Error(`requestCancel: no run ${runId}`);
  }

  closeRunsFinishedBy(runId: string): string[] {
    this.#beforeWrite();
    return this.#sql.closeRunsFinishedBy.all({ run: runId }).map((row) => row.id);
  }

  // Steps

  insertSteps(runId: string, steps: readonly NewStep[], createdAt: number): void {
    this.#beforeWrite();
    const insert = this.#sql.insertStep;
    this.#db
      .transaction(() => {
        for (const step of steps) {
          insert.run({
            run_id: runId,
            address: step.address,
            job_id: step.jobId,
            instance_key: step.instanceKey,
            step_id: step.stepId,
            kind: step.kind,
            model: step.model ?? null,
            state: step.state,
            attempt: 0,
            fingerprint: step.fingerprint ?? null,
            input_json: this.#json(step.input),
            output_json: this.#json(step.output),
            files_json: this.#json(step.files),
            stdout: this.#text(step.stdout),
            request_id: step.requestId ?? null,
            reused_from_run: step.reusedFromRun ?? null,
            created_at: createdAt,
            finished_at: step.finishedAt ?? null,
            updated_at: createdAt,
            position: step.position ?? null,
          });
        }
      })
      .immediate();
  }

  updateStep(runId: string, address: string, patch: StepPatch): void {
    this.#beforeWrite();
    const json = (value: unknown) => this.#json(value);
    const text = (value: string) => this.#redact(value);
    const [setFingerprint, fingerprint] = patchColumn(patch.fingerprint, asIs);
    const [setInput, input] = patchColumn(patch.input, json);
    const [setOutput, output] = patchColumn(patch.output, json);
    const [setFiles, files] = patchColumn(patch.files, json);
    const [setStdout, stdout] = patchColumn(patch.stdout, text);
    const [setError, error] = patchColumn(patch.error, text);
    const [setRequestId, requestId] = patchColumn(patch.requestId, asIs);
    const [setReusedFromRun, reusedFromRun] = patchColumn(patch.reusedFromRun, asIs);
    const [setQueuePosition, queuePosition] = patchColumn(patch.queuePosition, asIs);
    const [setStartedAt, startedAt] = patchColumn(patch.startedAt, asIs);
    const [setFinishedAt, finishedAt] = patchColumn(patch.finishedAt, asIs);
    const { changes } = this.#sql.updateStep.run({
      run_id: runId,
      address,
      updated_at: patch.updatedAt,
      state: patch.state ?? null,
      attempt: patch.attempt ?? null,
      set_fingerprint: setFingerprint,
      fingerprint,
      set_input: setInput,
      input_json: input ?? null,
      set_output: setOutput,
      output_json: output ?? null,
      set_files: setFiles,
      files_json: files ?? null,
      set_stdout: setStdout,
      stdout,
      set_error: setError,
      error,
      set_request_id: setRequestId,
      request_id: requestId,
      set_reused_from_run: setReusedFromRun,
      reused_from_run: reusedFromRun,
      set_queue_position: setQueuePosition,
      queue_position: queuePosition,
      set_started_at: setStartedAt,
      started_at: startedAt,
      set_finished_at: setFinishedAt,
      finished_at: finishedAt,
    });
    if (changes === 0) throw new Error(`updateStep: no step ${address} in run ${runId}`);
  }

  getStep(runId: string, address: string): StepRecord | undefined {
    const row = this.#sql.getStep.get(runId, address);
    return row && toStepRecord(row);
  }

  getSteps(runId: string, filter: StepFilter = {}): StepRecord[] {
    const rows =
      filter.states === undefined
        ? this.#sql.getSteps.all(runId)
        : this.#sql.getStepsInStates.all(runId, JSON.stringify(filter.states));
    return rows.map(toStepRecord);
  }

  countStepsByState(runId: string): Partial<Record<StoredStepState, number>> {
    const counts: Partial<Record<StoredStepState, number>> = {};
    for (const { state, count } of this.#sql.countStepsByState.all(runId)) {
      counts[state as StoredStepState] = count;
    }
    return counts;
  }

  // Attempts

  startAttempt(attempt: NewAttempt): void {
    this.#beforeWrite();
    const reattach = attempt.reattach;
    this.#db
      .transaction(() => {
        this.#sql.insertAttempt.run({
          run_id: attempt.runId,
          address: attempt.address,
          attempt: attempt.attempt,
          workflow_name: attempt.workflowName,
          fingerprint: attempt.fingerprint,
          request_id: reattach?.requestId ?? null,
          state: reattach ? "submitted" : "submitting",
          reattached_from_run: reattach?.fromRunId ?? null,
          started_at: attempt.startedAt,
          submitted_at: reattach ? attempt.startedAt : null,
        });
        this.#sql.mirrorAttemptOnStep.run(
          attempt.attempt,
          reattach?.requestId ?? null,
          attempt.startedAt,
          attempt.runId,
          attempt.address,
        );
      })
      .immediate();
  }

  recordRequestId(key: AttemptKey, requestId: string, at: number, step?: StepPatch): void {
    if (this.#transactionDepth > 0) {
      throw new Error("recordRequestId must commit on its own: call it outside store.transaction()");
    }
    this.#beforeWrite();
    this.#db
      .transaction(() => {
        const { changes } = this.#sql.recordRequestId.run(requestId, at, key.runId, key.address, key.attempt);
        if (changes === 0)
          throw new Error(`recordRequestId: no attempt ${key.attempt} of ${key.address} in run ${key.runId}`);
        // With the step's new state, the id goes in the same row update.
        if (step) this.updateStep(key.runId, key.address, { ...step, requestId });
        else this.#sql.mirrorRequestIdOnStep.run(requestId, at, key.runId, key.address, key.attempt);
      })
      .immediate();
  }

  /** The fence (SPEC §10): true when this call inserted the attempt, claimed by `worker`. */
  claimAttempt(attempt: NewAttempt, step: StepPatch, worker: string): boolean {
    this.#beforeWrite();
    return this.#db
      .transaction(() => {
        if (this.#sql.attemptExists.get(attempt.runId, attempt.address, attempt.attempt)) return false;
        this.startAttempt(attempt);
        this.#sql.claimAttempt.run(worker, attempt.runId, attempt.address, attempt.attempt);
        this.updateStep(attempt.runId, attempt.address, step);
        return true;
      })
      .immediate();
  }

  /** A claimed attempt's request id, only while it is `submitting` without one and claimed by `worker`. */
  recordClaimedRequestId(
    key: AttemptKey,
    worker: string,
    requestId: string,
    at: number,
    step?: StepPatch,
  ): boolean {
    this.#beforeWrite();
    return this.#db
      .transaction(() => {
        const { changes } = this.#sql.recordClaimedRequestId.run(
          requestId,
          at,
          key.runId,
          key.address,
          key.attempt,
          worker,
        );
        if (changes === 0) return false;
        if (step) this.updateStep(key.runId, key.address, { ...step, requestId });
        else this.#sql.mirrorRequestIdOnStep.run(requestId, at, key.runId, key.address, key.attempt);
        return true;
      })
      .immediate();
  }

  /** An attempt left `submitting` without an id by a dead claimant becomes `unknown` (conditional). */
  abandonAttempt(key: AttemptKey, error: string, at: number, step: StepPatch): boolean {
    this.#beforeWrite();
    return this.#db
      .transaction(() => {
        const { changes } = this.#sql.abandonAttempt.run(
          this.#redact(error),
          at,
          key.runId,
          key.address,
          key.attempt,
        );
        if (changes === 0) return false;
        this.updateStep(key.runId, key.address, step);
        return true;
      })
      .immediate();
  }

  beatWorker(worker: WorkerBeat): void {
    this.#beforeWrite();
    this.#sql.beatWorker.run(
      worker.name,
      worker.host,
      worker.pid,
      worker.startedAt,
      worker.seenAt,
      worker.doing.join("\n"),
    );
  }

  leaveWorker(name: string): void {
    this.#beforeWrite();
    this.#sql.leaveWorker.run(name);
  }

  listWorkers(since: number): WorkerRecord[] {
    return this.#sql.listWorkers.all(since).map((row) => ({
      name: row.name,
      host: row.host,
      pid: row.pid,
      startedAt: row.started_at,
      seenAt: row.seen_at,
      doing: row.doing === "" ? [] : row.doing.split("\n"),
    }));
  }

  updateAttempt(key: AttemptKey, patch: AttemptPatch): void {
    this.#beforeWrite();
    const [setError, error] = patchColumn(patch.error, (value: string) => this.#redact(value));
    const [setQueuePosition, queuePosition] = patchColumn(patch.queuePosition, asIs);
    const [setFinishedAt, finishedAt] = patchColumn(patch.finishedAt, asIs);
    const { changes } = this.#sql.updateAttempt.run({
      run_id: key.runId,
      address: key.address,
      attempt: key.attempt,
      state: patch.state ?? null,
      set_error: setError,
      error,
      set_queue_position: setQueuePosition,
      queue_position: queuePosition,
      set_finished_at: setFinishedAt,
      finished_at: finishedAt,
      server_ms: patch.serverMs ?? null,
      cost_micros: patch.costMicros ?? null,
    });
    if (changes === 0)
      throw new Error(`updateAttempt: no attempt ${key.attempt} of ${key.address} in run ${key.runId}`);
  }

  getAttempts(runId: string, address?: string): AttemptRecord[] {
    const rows =
      address === undefined
        ? this.#sql.getAttemptsOfRun.all(runId)
        : this.#sql.getAttemptsOfStep.all(runId, address);
    return rows.map(toAttemptRecord);
  }

  findInFlight(workflowName: string, fingerprint: string, address?: string): InFlightAttempt | undefined {
    const row =
      address === undefined
        ? this.#sql.findInFlight.get(workflowName, fingerprint)
        : this.#sql.findInFlightAt.get(workflowName, fingerprint, address);
    return row && toInFlight(row);
  }

  inFlightAt(workflowName: string, fingerprint: string, address: string): InFlightAttempt[] {
    return this.#sql.inFlightAt.all(workflowName, fingerprint, address).map(toInFlight);
  }

  listInFlight(workflowName: string): InFlightAttempt[] {
    return this.#sql.listInFlight.all(workflowName).map(toInFlight);
  }

  typicalDuration(model: string, apiOrigin: string): TypicalDuration | undefined {
    return toTypicalDuration(
      this.#sql.recentServerDurations.all(model, apiOrigin, TYPICAL_SAMPLE).map((row) => row.server_ms),
    );
  }

  // Cost

  runCost(runId: string): CostTotal {
    const total: CostTotal = { micros: 0, known: 0, unknown: 0 };
    for (const cost of this.stepCosts(runId).values()) {
      total.micros += cost.micros;
      total.known += cost.known;
      total.unknown += cost.unknown;
    }
    return total;
  }

  stepCosts(runId: string): Map<string, CostTotal> {
    const costs = new Map<string, CostTotal>();
    for (const row of this.#sql.costByAddress.all(runId)) {
      if (row.known === 0 && row.unknown === 0) continue;
      costs.set(row.address, { micros: row.micros ?? 0, known: row.known, unknown: row.unknown });
    }
    return costs;
  }

  learnedCost(model: string, apiOrigin: string): { micros: number; requests: number } | undefined {
    const costs = this.#sql.recentCosts.all(model, apiOrigin, TYPICAL_SAMPLE).map((row) => row.cost_micros);
    if (costs.length === 0) return undefined;
    const sum = costs.reduce((a, b) => a + b, 0);
    return { micros: Math.round(sum / costs.length), requests: costs.length };
  }

  recordPrice(price: PriceRecord): void {
    this.#beforeWrite();
    this.#sql.upsertPrice.run(
      price.apiOrigin,
      price.modelId,
      price.micros,
      price.unit,
      price.note ?? null,
      price.readAt,
    );
  }

  pricesAt(apiOrigin: string): Map<string, PriceRecord> {
    return new Map(
      this.#sql.pricesAt.all(apiOrigin).map((row) => [
        row.model_id,
        {
          apiOrigin,
          modelId: row.model_id,
          micros: row.micros,
          unit: row.unit,
          note: row.note ?? undefined,
          readAt: row.read_at,
        },
      ]),
    );
  }

  // Outputs

  recordOutput(output: NewOutput): void {
    this.#beforeWrite();
    this.#sql.upsertOutput.run({
      run_id: output.runId,
      address: output.address,
      name: output.name,
      idx: output.index ?? null,
      url: output.url,
      path: output.path ?? null,
      bytes: output.bytes ?? null,
      sha256: output.sha256 ?? null,
      // The file is this process's: the host that wrote it (SPEC §10).
      host: output.path === undefined ? null : hostname(),
      created_at: output.createdAt,
    });
  }

  getOutputs(runId: string, address?: string): OutputRecord[] {
    const rows =
      address === undefined
        ? this.#sql.getOutputsOfRun.all(runId)
        : this.#sql.getOutputsOfStep.all(runId, address);
    return rows.map(toOutputRecord);
  }

  // Input captures

  recordInputCapture(capture: NewInputCapture): void {
    this.#beforeWrite();
    this.#sql.upsertInputCapture.run({
      run_id: capture.runId,
      url: capture.url,
      address: capture.address,
      path: capture.path ?? null,
      bytes: capture.bytes ?? null,
      sha256: capture.sha256 ?? null,
      error: this.#text(capture.error),
      created_at: capture.createdAt,
    });
  }

  getInputCaptures(runIds: readonly string[]): InputCaptureRecord[] {
    return [...new Set(runIds)].flatMap((runId) =>
      this.#sql.getInputCapturesOfRun.all(runId).map(toInputCaptureRecord),
    );
  }

  // Reuse

  findSucceeded(workflowName: string, fingerprint: string, scope: ReuseScope): ReusableStep | undefined {
    const row = this.#sql.findSucceeded.get(
      fingerprint,
      workflowName,
      scope.apiOrigin,
      scope.notBefore ?? Number.MIN_SAFE_INTEGER,
    );
    return row && toReusableStep(row);
  }

  // Lock

  acquireLock(workflowName: string, holder: LockRequest, options: LockOptions): LockResult {
    this.#beforeWrite();
    const { now } = options;
    return this.#db
      .transaction((): LockResult => {
        const row = this.#sql.getLock.get(workflowName);
        const decision = decideLock(row && toLockHolder(row), holder, {
          now,
          staleAfterMs: options.staleAfterMs,
          isProcessAlive: options.isProcessAlive ?? isProcessAlive,
        });
        if (decision.action === "refuse") return { acquired: false, holder: decision.holder };
        if (decision.action === "refresh") {
          this.#sql.heartbeat.run(now, workflowName, holder.runId);
          return { acquired: true };
        }
        this.#sql.upsertLock.run({
          workflow_name: workflowName,
          run_id: holder.runId,
          pid: holder.pid,
          hostname: holder.hostname,
          acquired_at: now,
          heartbeat_at: now,
        });
        return decision.action === "take_over"
          ? { acquired: true, tookOverFrom: decision.from }
          : { acquired: true };
      })
      .immediate();
  }

  heartbeat(workflowName: string, runId: string, now: number): boolean {
    this.#beforeWrite();
    return this.#sql.heartbeat.run(now, workflowName, runId).changes > 0;
  }

  releaseLock(workflowName: string, runId: string): void {
    this.#beforeWrite();
    this.#sql.releaseLock.run(workflowName, runId);
  }

  getLock(workflowName: string): LockHolder | undefined {
    const row = this.#sql.getLock.get(workflowName);
    return row && toLockHolder(row);
  }

  // Plumbing

  transaction<T>(fn: () => T): T {
    if (!this.readonly) this.#beforeWrite();
    const run = this.#db.transaction(() => {
      const result = fn();
      // An await inside would let other writes join this transaction and commit it early.
      if (isThenable(result)) throw new TypeError("store.transaction() needs a synchronous function");
      return result;
    });
    this.#transactionDepth++;
    try {
      // IMMEDIATE takes the write lock up front, so a read-then-write cannot fail on a stale snapshot.
      return this.readonly ? run.deferred() : run.immediate();
    } finally {
      this.#transactionDepth--;
    }
  }

  // Group commit (group-commit.ts)

  setGroupCommit(on: boolean): void {
    if (!this.readonly) this.#group.turn(on);
  }

  afterCommit(fn: () => void): void {
    this.#group.afterCommit(fn);
  }

  committed(): Promise<void> {
    return this.#group.committed();
  }

  commitPending(): void {
    this.#group.commitPending();
  }

  /** Every write starts here. */
  #beforeWrite(): void {
    this.#group.beforeWrite();
    this.#checkpointWhenIdle();
  }

  /**
   * Copies the WAL's pages into the database file once writes pause for IDLE_CHECKPOINT_MS
   * (a run waiting on its requests). SQLite checkpoints when the last connection closes:
   * that checkpoint then has only the last moments' writes to copy, not the whole run's
   * since the last automatic one, and the command exits sooner (≈ 7 ms after a 40-step
   * run). PASSIVE: it waits for no reader and no writer (not even the busy timeout), and one
   * that cannot finish (another process reading) leaves the rest for later. Never keeps the
   * process alive.
   */
  #checkpointWhenIdle(): void {
    if (this.#idleCheckpoint !== undefined) {
      this.#idleCheckpoint.refresh();
      return;
    }
    this.#idleCheckpoint = setTimeout(() => {
      this.#idleCheckpoint = undefined;
      // A transaction still open: the next write arms it again, or the close checkpoints.
      if (!this.#db.open || this.#db.inTransaction || this.#group.failed) return;
      try {
        this.#db.pragma("wal_checkpoint(PASSIVE)");
      } catch {
        // Only a shortcut: the checkpoint at close (or SQLite's automatic one) copies them.
      }
    }, IDLE_CHECKPOINT_MS);
    this.#idleCheckpoint.unref();
  }

  close(): void {
    if (!this.#db.open) return;
    clearTimeout(this.#idleCheckpoint);
    this.#idleCheckpoint = undefined;
    try {
      this.#group.close();
    } finally {
      try {
        // Only a hint to the query planner: failing it (a busy or damaged file) must not
        // replace the error that is on its way out, nor wait another busy timeout for it.
        if (!this.readonly && !this.#group.failed) {
          this.#db.pragma("busy_timeout = 0");
          this.#db.pragma("optimize");
        }
      } catch {
        // Nothing to do: the next close optimizes.
      }
      this.#db.close();
    }
  }

  #json(value: unknown): string | null {
    return value === undefined ? null : this.#redact(JSON.stringify(value));
  }

  #text(value: string | undefined): string | null {
    return value === undefined ? null : this.#redact(value);
  }
}
