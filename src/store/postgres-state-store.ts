/**
 * The PostgreSQL adapter of the state store port (port.ts), with `pg`: what lets several
 * machines share one state (SPEC §10). It keeps the port's contract as the SQLite adapter
 * does, and passes the same conformance suite (test/store-conformance.ts).
 *
 * How a networked store keeps "writes apply in call order and are visible at once":
 * - Every write goes through one ordered queue, run on one connection of its own (the
 *   writer). The writes queued while the previous group commits (or during one turn of the
 *   event loop) form the next group: one transaction, one commit for all of them (group
 *   commit, as SQLite's adapter does). A write's promise resolves once its group committed
 *   with `synchronous_commit = on`: durable, as the port asks. Should the group fail, it is
 *   rolled back and its writes are run again one transaction each, so that one bad write
 *   rejects alone.
 * - A claim of an attempt (`attempts.claim`, the fence of SPEC §10) has a queue and a
 *   connection of its own (the claimer), grouped and committed the same way: a worker's next
 *   submission waits for its claim, and in the writer's queue the claim waited behind the
 *   end writes of the steps that had just ended (≈ 25–40 ms at a wave's turn, up to 0.1 s).
 *   Call order still holds for what a claim touches: a step's delivery awaits each of its
 *   writes before the next, so when it claims, no earlier write of that step (nor of its
 *   attempt) is waiting in the writer's queue; a claim inserts its attempt's row and updates
 *   only its step's. Writes issued after a claim resolved are issued after it committed.
 * - A read waits for every write issued before it (both queues' tails), then runs on the
 *   pool: it sees them committed. So a read issued after a write sees it.
 * - `history.priorRuns` hands out a synchronous lookup (postgres-prior-runs.ts): it fetches
 *   the workflow's succeeded steps and in-flight attempts through the queue (seeing exactly
 *   the writes before it), and every later write of this store updates it at call time.
 * - A lost connection rejects the writes waiting and every later one with one clear error:
 *   a write whose commit was not acknowledged may or may not be there, so nothing is
 *   retried behind the caller's back; the next `apply` re-attaches to what was recorded.
 */
import os from "node:os";
import pg from "pg";
import { ExitCode, RunflowError } from "../errors.js";
import type { CostTotal } from "../cost/money.js";
import { missingStateError, newerSchemaError, StateStoreError } from "./errors.js";
import { describePostgresLocation } from "./location.js";
import { decideLock, isProcessAlive } from "./lock.js";
import {
  LATEST_POSTGRES_SCHEMA_VERSION,
  migratePostgres,
  postgresSchemaVersion,
} from "./postgres-migrations.js";
import { PriorRunsMirror, type StepFacts } from "./postgres-prior-runs.js";
import { makeRedactor, tokensFromEnvironment, type Redactor } from "./redact.js";
import type {
  AttemptsPort,
  BudgetsPort,
  HistoryPort,
  LocksPort,
  WorkersPort,
  OpenStateStoreOptions,
  OutputsPort,
  PriorRunsLookup,
  RunsPort,
  StateStore,
  StepsPort,
} from "./port.js";
import { OPEN_ATTEMPT_STATES, type AttemptRecord, type StepRecord } from "./types.js";
import type { BudgetFigures } from "../cost/budget.js";
import {
  decideRelease,
  decideReserve,
  decideSettle,
  type EndOfAttempt,
  type Reservation,
} from "./budget-ledger.js";
import type {
  AttemptKey,
  AttemptPatch,
  InputCaptureRecord,
  NewAttempt,
  NewInputCapture,
  NewOutput,
  NewStep,
  PriceRecord,
  StepPatch,
  StoredStepState,
} from "./types.js";

/** Options of the PostgreSQL store, beyond the port's. */
import * as Rows from "./rows.js";
import {
  jsonAsParsed,
  toAttemptRecord,
  toInputCaptureRecord,
  toLockHolder,
  toOutputRecord,
  toTypicalDuration,
  type InputCaptureRow,
  type LockRow,
  type OutputRow,
} from "./rows.js";

export interface PostgresStateStoreOptions extends OpenStateStoreOptions {
  /** Connections for reads (the writes have one of their own). Default 4. */
  readConnections?: number | undefined;
}

/** Any client or pool: what a query needs. */
type Queryable = Pick<pg.ClientBase, "query">;

/** One write (or a read that must see exactly the writes before it), queued in call order. */
interface QueuedOperation {
  run: (client: Queryable) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** A connection that writes, and its queue: the writes issued while a group commits form the next. */
interface WriteLane {
  client: pg.Client;
  /** The group the next write joins; sealed when it starts to run. */
  open: QueuedOperation[] | undefined;
  /** Settles once every group queued so far has committed or failed; never rejects. */
  tail: Promise<void>;
}

/** int8 (counts, sums, milliseconds) as numbers: every value runflow keeps fits in 2^53. */
const INT8_OID = 20;
const NUMBERS = {
  getTypeParser(oid: number, format?: "text" | "binary"): (value: string) => unknown {
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
  },
};

function unreachableError(location: string, cause: unknown): StateStoreError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new StateStoreError(
    "state_unreachable",
    location,
    `cannot reach the PostgreSQL state at ${location}: ${reason}`,
    {
      hint: "check that the server runs, that the database exists (createdb NAME), and that --state (or RUNFLOW_STATE) is postgres://USER@HOST[:PORT]/DATABASE (the password in PGPASSWORD or ~/.pgpass)",
      cause,
    },
  );
}

/** The connection to the server went away: what was not acknowledged may or may not be saved. */
export function connectionLostError(location: string, cause: unknown): RunflowError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new RunflowError(
    "state_connection_lost",
    ExitCode.stepsFailed,
    `lost the connection to the PostgreSQL state at ${location} (${reason}); the run stopped, and its last changes may not have been saved`,
    {
      hint: "once the server is reachable again, run `runflow apply` again: it re-attaches to every request whose id was recorded",
      cause,
    },
  );
}

function readonlyError(location: string): StateStoreError {
  return new StateStoreError(
    "state_readonly",
    location,
    `the PostgreSQL state at ${location} was opened for reading only`,
  );
}

const CONNECTION_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND"]);

/** Errors that mean the connection is gone, not that one statement was refused. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && (CONNECTION_ERROR_CODES.has(code) || /^(08|57P)/.test(code))) return true;
  const message = error instanceof Error ? error.message : "";
  return /Connection terminated|not queryable|connection error|closed/i.test(message);
}

/** PostgreSQL text cannot hold NUL: it becomes U+FFFD (JSON keeps it, as the escape `\u0000`). */
function withoutNul(text: string): string {
  return text.includes("\u0000") ? text.replaceAll("\u0000", "\uFFFD") : text;
}

const OPEN_STATES_SQL = `(${OPEN_ATTEMPT_STATES.map((state) => `'${state}'`).join(", ")})`;
const UNFINISHED_STEP_STATES_SQL =
  "('pending', 'waiting', 'submitting', 'in_queue', 'in_progress', 'downloading', 'running')";
/** How many of a model's latest succeeded requests its typical duration is the median of. */
const TYPICAL_SAMPLE = 20;

const ATTEMPT_COLUMNS = `a.seq, a.run_id, a.address, a.attempt, a.workflow_name, a.fingerprint, a.request_id,
  a.state, a.queue_position, a.error, a.reattached_from_run, a.started_at, a.submitted_at, a.finished_at,
  a.api_origin, a.claimed_by`;

/** As in sqlite.ts: the newest attempt of a (workflow, address, fingerprint) at an API origin speaks for it. */
export const IN_FLIGHT_SQL = `
  SELECT ${ATTEMPT_COLUMNS} FROM attempts a
  WHERE a.workflow_name = $1 AND a.state IN ${OPEN_STATES_SQL}
    AND NOT EXISTS (
      SELECT 1 FROM attempts later
      WHERE later.workflow_name = a.workflow_name AND later.fingerprint = a.fingerprint
        AND later.address = a.address AND later.seq > a.seq
        AND later.api_origin IS NOT DISTINCT FROM a.api_origin)
  ORDER BY a.seq`;

/**
 * The workflow's succeeded steps (the sources of reuse) with their run's origin: the newest
 * of each fingerprint and origin, the only one `findSucceeded` can answer with (as in
 * sqlite.ts, newest by finish, then by insertion).
 */
export const SUCCEEDED_SQL = `
  SELECT DISTINCT ON (s.fingerprint, r.api_origin)
    s.seq, s.run_id, s.address, s.fingerprint, r.api_origin,
    coalesce(s.finished_at, s.updated_at) AS finished_at, s.request_id, s.output_json, s.files_json, s.stdout
  FROM steps s JOIN runs r ON r.id = s.run_id
  WHERE s.state = 'succeeded' AND s.fingerprint IS NOT NULL AND r.workflow_name = $1
    AND r.api_origin IS NOT NULL
  ORDER BY s.fingerprint, r.api_origin, coalesce(s.finished_at, s.updated_at) DESC, s.seq DESC`;

type RunRow = Rows.RunRow<unknown>;
type StepRow = Rows.StepRow<unknown>;
/** An attempt's row with its order of insertion (the prior-runs lookup orders by it). */
type AttemptRow = Rows.AttemptRow & { seq: number };

interface BudgetRow {
  max_micros: number;
  spent_micros: number;
  reserved_micros: number;
  reached: boolean;
  held: number;
}

function budgetFigures(row: BudgetRow): BudgetFigures {
  return {
    maxMicros: row.max_micros,
    spentMicros: row.spent_micros,
    reservedMicros: row.reserved_micros,
    reached: row.reached,
    held: row.held,
  };
}

const toRunRecord = (row: RunRow) => Rows.toRunRecord(row, jsonAsParsed);
const toStepRecord = (row: StepRow) => Rows.toStepRecord(row, jsonAsParsed);

/** Columns of `steps` a patch may set, by field. `json`/`text` say how the value is written. */
const STEP_PATCH_COLUMNS: readonly [keyof StepPatch, string, "json" | "text" | "plain"][] = [
  ["state", "state", "plain"],
  ["attempt", "attempt", "plain"],
  ["fingerprint", "fingerprint", "plain"],
  ["input", "input_json", "json"],
  ["output", "output_json", "json"],
  ["files", "files_json", "json"],
  ["stdout", "stdout", "text"],
  ["error", "error", "text"],
  ["requestId", "request_id", "plain"],
  ["reusedFromRun", "reused_from_run", "plain"],
  ["queuePosition", "queue_position", "plain"],
  ["startedAt", "started_at", "plain"],
  ["finishedAt", "finished_at", "plain"],
];

export { describePostgresLocation };

export class PostgresStateStore implements StateStore {
  /** The URL without its password (for messages). */
  readonly location: string;
  readonly readonly: boolean;
  readonly runs: RunsPort;
  readonly steps: StepsPort;
  readonly attempts: AttemptsPort;
  readonly outputs: OutputsPort;
  readonly locks: LocksPort;
  readonly workers: WorkersPort;
  readonly history: HistoryPort;
  readonly budgets: BudgetsPort;

  readonly #pool: pg.Pool;
  /** Every write but the claims, in call order. */
  readonly #writer: WriteLane | undefined;
  /** The claims of attempts (the module's comment says why they have their own). */
  readonly #claimer: WriteLane | undefined;
  readonly #redact: Redactor;
  readonly #prior = new PriorRunsMirror();
  /** Each workflow's prior-runs fetch queued and not started yet (#priorRuns). */
  readonly #queuedPriorFetches = new Map<string, Promise<PriorRunsLookup>>();
  /** Reads asked for and not started yet, by what they read (#sharedRead). */
  readonly #queuedReads = new Map<string, { after: Promise<void>; reading: Promise<unknown> }>();
  /** Reads of rows by key asked for and not started yet, by the kind of rows (#batchedRead). */
  readonly #queuedBatches = new Map<
    string,
    { after: Promise<void>; keys: Set<string>; rows: Promise<Map<string, unknown>> }
  >();
  /**
   * Settles once every write issued so far has committed or failed, in both queues; never
   * rejects. A new promise whenever a new group is queued in either (reads compare it).
   */
  #tail: Promise<void> = Promise.resolve();
  /** The connection is gone: every later write rejects with this. */
  #lost: Error | undefined;
  #closed = false;

  constructor(
    pool: pg.Pool,
    writers: { writer: pg.Client; claimer: pg.Client } | undefined,
    location: string,
    redact: Redactor,
  ) {
    this.#pool = pool;
    const lane = (client: pg.Client): WriteLane => {
      client.on("error", (error) => {
        this.#lost ??= connectionLostError(location, error);
      });
      return { client, open: undefined, tail: Promise.resolve() };
    };
    this.#writer = writers && lane(writers.writer);
    this.#claimer = writers && lane(writers.claimer);
    this.location = location;
    this.readonly = writers === undefined;
    this.#redact = redact;

    const write = <T>(run: (client: Queryable) => Promise<T>, mirror?: () => void): Promise<T> =>
      this.#enqueue(run, mirror);
    const read = <T>(query: (client: Queryable) => Promise<T>): Promise<T> => this.#read(query);
    const json = (value: unknown) => this.#json(value);
    const text = (value: string | undefined) => this.#text(value);
    const prior = this.#prior;

    const updateStep = async (client: Queryable, runId: string, address: string, patch: StepPatch) => {
      const values: unknown[] = [runId, address, patch.updatedAt];
      const sets = ["updated_at = $3"];
      for (const [field, column, kind] of STEP_PATCH_COLUMNS) {
        const value = patch[field];
        if (value === undefined) continue;
        // state and attempt are never cleared (coalesce in the SQLite adapter).
        if (value === null && (field === "state" || field === "attempt")) continue;
        let encoded: unknown = value;
        if (value !== null && kind === "json") encoded = json(value);
        else if (value !== null && kind === "text") encoded = text(value as string);
        values.push(encoded);
        sets.push(`${column} = $${values.length}${kind === "json" ? "::json" : ""}`);
      }
      const result = await client.query(
        `UPDATE steps SET ${sets.join(", ")} WHERE run_id = $1 AND address = $2`,
        values,
      );
      if (result.rowCount === 0) throw new Error(`updateStep: no step ${address} in run ${runId}`);
    };

    const updateAttempt = async (client: Queryable, key: AttemptKey, patch: AttemptPatch) => {
      const values: unknown[] = [key.runId, key.address, key.attempt];
      const sets: string[] = [];
      const set = (column: string, value: unknown) => {
        values.push(value);
        sets.push(`${column} = $${values.length}`);
      };
      if (patch.state !== undefined) set("state", patch.state);
      if (patch.error !== undefined) set("error", patch.error === null ? null : text(patch.error));
      if (patch.queuePosition !== undefined) set("queue_position", patch.queuePosition);
      if (patch.finishedAt !== undefined) set("finished_at", patch.finishedAt);
      if (patch.serverMs !== undefined) set("server_ms", patch.serverMs);
      if (patch.costMicros !== undefined) set("cost_micros", patch.costMicros);
      const result = await client.query(
        sets.length === 0
          ? "SELECT 1 FROM attempts WHERE run_id = $1 AND address = $2 AND attempt = $3"
          : `UPDATE attempts SET ${sets.join(", ")} WHERE run_id = $1 AND address = $2 AND attempt = $3`,
        values,
      );
      if (result.rowCount === 0)
        throw new Error(`updateAttempt: no attempt ${key.attempt} of ${key.address} in run ${key.runId}`);
    };

    const recordOutput = (client: Queryable, output: NewOutput) =>
      client.query(
        `INSERT INTO outputs (run_id, address, name, idx, url, path, bytes, sha256, created_at, host)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (run_id, address, name, (coalesce(idx, -1))) DO UPDATE SET
           url = excluded.url, path = excluded.path, bytes = excluded.bytes, sha256 = excluded.sha256,
           host = excluded.host, created_at = excluded.created_at`,
        [
          output.runId,
          output.address,
          output.name,
          output.index ?? null,
          withoutNul(output.url),
          output.path === undefined ? null : withoutNul(output.path),
          output.bytes ?? null,
          output.sha256 ?? null,
          output.createdAt,
          // The file is this process's: the host that wrote it (SPEC §10).
          output.path === undefined ? null : os.hostname(),
        ],
      );

    const insertSteps = async (client: Queryable, runId: string, steps: readonly NewStep[], at: number) => {
      // One statement per 1,000 steps: a 100,000-step plan is 100 round trips, not 100,000.
      for (let from = 0; from < steps.length; from += 1_000) {
        const chunk = steps.slice(from, from + 1_000);
        const rows = chunk.map((step) => ({
          address: step.address,
          job_id: step.jobId,
          instance_key: step.instanceKey,
          step_id: step.stepId,
          kind: step.kind,
          model: step.model ?? null,
          state: step.state,
          fingerprint: step.fingerprint ?? null,
          input_json: step.input === undefined ? null : json(step.input),
          output_json: step.output === undefined ? null : json(step.output),
          files_json: step.files === undefined ? null : json(step.files),
          stdout: text(step.stdout),
          request_id: step.requestId ?? null,
          reused_from_run: step.reusedFromRun ?? null,
          finished_at: step.finishedAt ?? null,
          position: step.position ?? null,
        }));
        // The rows travel as one JSON array, unpacked in the order given (WITH ORDINALITY),
        // so that seq follows the order of the steps as the SQLite rowid does.
        await client.query(
          `INSERT INTO steps (run_id, address, job_id, instance_key, step_id, kind, model, state, attempt,
             fingerprint, input_json, output_json, files_json, stdout, request_id, reused_from_run, created_at,
             finished_at, updated_at, position)
           SELECT $1, r->>'address', r->>'job_id', r->>'instance_key', r->>'step_id', r->>'kind', r->>'model',
             r->>'state', 0, r->>'fingerprint', (r->>'input_json')::json, (r->>'output_json')::json,
             (r->>'files_json')::json, r->>'stdout', r->>'request_id', r->>'reused_from_run', $3,
             (r->>'finished_at')::bigint, $3, (r->>'position')::integer
           FROM json_array_elements($2::json) WITH ORDINALITY AS e(r, n)
           ORDER BY e.n`,
          [runId, JSON.stringify(rows), at],
        );
      }
    };

    const stepFacts = (step: NewStep): StepFacts => ({
      state: step.state,
      attempt: 0,
      fingerprint: step.fingerprint,
      requestId: step.requestId,
      output: step.output,
      files: step.files,
      stdout: step.stdout === undefined ? undefined : (text(step.stdout) ?? undefined),
      finishedAt: step.finishedAt,
      updatedAt: 0,
    });

    const mirrorStepPatch = (runId: string, address: string, patch: StepPatch) =>
      prior.patchStep(runId, address, {
        ...patch,
        stdout: typeof patch.stdout === "string" ? text(patch.stdout) : patch.stdout,
      });

    this.runs = {
      create: (run) =>
        write(
          (client) =>
            client.query(
              `INSERT INTO runs (id, workflow_name, workflow_file, kind, parent_run_id, plan_json, options_json,
                 pid, hostname, started_at, api_origin)
               VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8, $9, $10, $11)`,
              [
                run.id,
                run.workflowName,
                run.workflowFile,
                run.kind,
                run.parentRunId ?? null,
                json(run.plan ?? null),
                json(run.options ?? null),
                run.pid,
                run.hostname,
                run.startedAt,
                run.apiOrigin ?? null,
              ],
            ),
          () => prior.createRun(run.id, run.workflowName, run.apiOrigin),
        ).then(() => undefined),
      finish: (runId, result) =>
        write(async (client) => {
          const { rowCount } = await client.query(
            `UPDATE runs SET status = $1, exit_code = $2, finished_at = $3, counts_json = $4::json WHERE id = $5`,
            [result.status, result.exitCode, result.finishedAt, JSON.stringify(result.counts), runId],
          );
          if (rowCount === 0) throw new Error(`finishRun: no run ${runId}`);
        }),
      // A worker asks for every delivery (is the run cancelled?): a wave's asks share a read.
      get: (runId) =>
        this.#sharedRead(`run ${runId}`, async (client) => {
          const { rows } = await client.query<RunRow>("SELECT * FROM runs WHERE id = $1", [runId]);
          return rows[0] && toRunRecord(rows[0]);
        }),
      latest: (workflowName) =>
        read(async (client) => {
          const { rows } =
            workflowName === undefined
              ? await client.query<RunRow>("SELECT * FROM runs ORDER BY started_at DESC, seq DESC LIMIT 1")
              : await client.query<RunRow>(
                  "SELECT * FROM runs WHERE workflow_name = $1 ORDER BY started_at DESC, seq DESC LIMIT 1",
                  [workflowName],
                );
          return rows[0] && toRunRecord(rows[0]);
        }),
      list: ({ limit, workflowName }) =>
        read(async (client) => {
          const { rows } =
            workflowName === undefined
              ? await client.query<RunRow>("SELECT * FROM runs ORDER BY started_at DESC, seq DESC LIMIT $1", [
                  limit,
                ])
              : await client.query<RunRow>(
                  "SELECT * FROM runs WHERE workflow_name = $1 ORDER BY started_at DESC, seq DESC LIMIT $2",
                  [workflowName, limit],
                );
          return rows.map(toRunRecord);
        }),
      plan: (runId) =>
        read(async (client) => {
          const { rows } = await client.query<{ plan_json: unknown }>(
            "SELECT plan_json FROM runs WHERE id = $1",
            [runId],
          );
          return rows[0]?.plan_json;
        }),
      setPlan: (runId, plan) =>
        write(async (client) => {
          const { rowCount } = await client.query("UPDATE runs SET plan_json = $1::json WHERE id = $2", [
            json(plan ?? null),
            runId,
          ]);
          if (rowCount === 0) throw new Error(`setRunPlan: no run ${runId}`);
        }),
      planParts: (runId, fromPart = 0) =>
        read(async (client) => {
          const { rows } = await client.query<{ steps_json: unknown }>(
            "SELECT steps_json FROM run_plan_parts WHERE run_id = $1 AND part >= $2 ORDER BY part",
            [runId, fromPart],
          );
          return rows.map((row) => row.steps_json);
        }),
      addPlanPart: (runId, part, steps, stored, createdAt) =>
        write(
          async (client) => {
            await insertSteps(client, runId, steps, createdAt);
            await client.query(
              "INSERT INTO run_plan_parts (run_id, part, steps_json) VALUES ($1, $2, $3::json)",
              [runId, part, json(stored ?? null)],
            );
          },
          () => steps.forEach((step) => prior.insertStep(runId, step.address, stepFacts(step), createdAt)),
        ),
      requestCancel: (runId, at) =>
        write(async (client) => {
          const { rowCount } = await client.query(
            "UPDATE runs SET cancel_requested_at = coalesce(cancel_requested_at, $1) WHERE id = $2",
            [at, runId],
          );
          if (rowCount === 0) throw new Error(`requestCancel: no run ${runId}`);
        }),
      closeFinishedBy: (runId) =>
        write(async (client) => {
          const { rows } = await client.query<{ id: string }>(
            `UPDATE runs AS old SET finished_by_run = $1
             FROM (SELECT workflow_name, api_origin, started_at FROM runs WHERE id = $1) AS new
             WHERE old.workflow_name = new.workflow_name AND old.api_origin = new.api_origin
               AND old.id <> $1 AND old.started_at <= new.started_at AND old.finished_by_run IS NULL
               AND old.status IN ('running', 'interrupted')
               AND EXISTS (SELECT 1 FROM steps s WHERE s.run_id = old.id AND s.state IN ${UNFINISHED_STEP_STATES_SQL})
               AND NOT EXISTS (
                 SELECT 1 FROM steps s WHERE s.run_id = old.id AND s.state IN ${UNFINISHED_STEP_STATES_SQL}
                   AND NOT EXISTS (
                     SELECT 1 FROM steps done WHERE done.run_id = $1 AND done.address = s.address
                       AND done.state IN ('succeeded', 'reused')))
             RETURNING old.id`,
            [runId],
          );
          return rows.map((row) => row.id);
        }),
      unfinishedInstances: (runId) =>
        read(async (client) => {
          const { rows } = await client.query<{ instance: string }>(
            `SELECT DISTINCT job_id || '/' || instance_key AS instance FROM steps
             WHERE run_id = $1 AND state NOT IN ('succeeded', 'reused')`,
            [runId],
          );
          return new Set(rows.map((row) => row.instance));
        }),
    };

    this.steps = {
      insert: (runId, steps, createdAt) =>
        write(
          (client) => insertSteps(client, runId, steps, createdAt),
          () => steps.forEach((step) => prior.insertStep(runId, step.address, stepFacts(step), createdAt)),
        ),
      update: (runId, address, patch, also) =>
        write(
          async (client) => {
            for (const output of also?.outputs ?? []) await recordOutput(client, output);
            if (also?.attempt) await updateAttempt(client, also.attempt.key, also.attempt.patch);
            await updateStep(client, runId, address, patch);
          },
          () => {
            if (also?.attempt) prior.patchAttempt(also.attempt.key, also.attempt.patch);
            mirrorStepPatch(runId, address, patch);
          },
        ),
      // A worker reads the step of each delivery: a wave's reads go as one query.
      get: (runId, address) =>
        this.#batchedRead<StepRecord | undefined>(`steps ${runId}`, address, async (client, addresses) => {
          const { rows } = await client.query<StepRow>(
            "SELECT * FROM steps WHERE run_id = $1 AND address = ANY($2)",
            [runId, addresses],
          );
          return new Map(rows.map((row) => [row.address, toStepRecord(row)]));
        }),
      list: (runId, filter) =>
        read(async (client) => {
          const { rows } =
            filter?.states === undefined
              ? await client.query<StepRow>(
                  "SELECT * FROM steps WHERE run_id = $1 ORDER BY position NULLS FIRST, seq",
                  [runId],
                )
              : await client.query<StepRow>(
                  `SELECT * FROM steps WHERE run_id = $1 AND state = ANY($2::text[])
                   ORDER BY position NULLS FIRST, seq`,
                  [runId, [...filter.states]],
                );
          return rows.map(toStepRecord);
        }),
      changedSince: (runId, since) =>
        read(async (client) => {
          // The horizon is the statement's own snapshot's xmin: every transaction below it had
          // ended when these rows were read (see migration 4).
          const { rows } = await client.query<StepRow & { horizon: string }>(
            `SELECT s.*, pg_snapshot_xmin(pg_current_snapshot())::text AS horizon FROM steps s
             WHERE s.run_id = $1 AND s.changed_xid >= $2::xid8
             ORDER BY s.position NULLS FIRST, s.seq`,
            [runId, since === undefined || since === "" ? "0" : since],
          );
          // No row: nothing changed, and the old cursor still holds.
          return { steps: rows.map(toStepRecord), cursor: rows[0]?.horizon ?? since ?? "" };
        }),
      countByState: (runId) =>
        read(async (client) => {
          const { rows } = await client.query<{ state: StoredStepState; count: number }>(
            "SELECT state, count(*) AS count FROM steps WHERE run_id = $1 GROUP BY state",
            [runId],
          );
          const counts: Partial<Record<StoredStepState, number>> = {};
          for (const { state, count } of rows) counts[state] = count;
          return counts;
        }),
    };

    this.attempts = {
      start: (attempt, step) =>
        write(
          async (client) => {
            await insertAttempt(client, attempt);
            await client.query(
              "UPDATE steps SET attempt = $1, request_id = $2, updated_at = $3 WHERE run_id = $4 AND address = $5",
              [
                attempt.attempt,
                attempt.reattach?.requestId ?? null,
                attempt.startedAt,
                attempt.runId,
                attempt.address,
              ],
            );
            await updateStep(client, attempt.runId, attempt.address, step);
          },
          () => {
            prior.startAttempt(attempt);
            mirrorStepPatch(attempt.runId, attempt.address, step);
          },
        ),
      recordRequestId: (key, requestId, at, step) =>
        write(
          async (client) => {
            const { rowCount } = await client.query(
              `UPDATE attempts SET request_id = $1, submitted_at = $2,
                 state = CASE WHEN state = 'submitting' THEN 'submitted' ELSE state END
               WHERE run_id = $3 AND address = $4 AND attempt = $5`,
              [requestId, at, key.runId, key.address, key.attempt],
            );
            if (rowCount === 0)
              throw new Error(
                `recordRequestId: no attempt ${key.attempt} of ${key.address} in run ${key.runId}`,
              );
            if (step) await updateStep(client, key.runId, key.address, { ...step, requestId });
            else
              await client.query(
                "UPDATE steps SET request_id = $1, updated_at = $2 WHERE run_id = $3 AND address = $4 AND attempt = $5",
                [requestId, at, key.runId, key.address, key.attempt],
              );
          },
          () => {
            prior.recordRequestId(key, requestId, at);
            if (step) mirrorStepPatch(key.runId, key.address, { ...step, requestId });
          },
        ),
      update: (key, patch) =>
        write(
          (client) => updateAttempt(client, key, patch),
          () => prior.patchAttempt(key, patch),
        ),
      claim: async (attempt, step, worker) => {
        // Mirrored once won: a lost claim wrote nothing. In the claims' own queue (above).
        const won = await this.#enqueue(
          async (client) => {
            const inserted = await insertAttempt(client, attempt, worker);
            if (inserted.rowCount === 0) return false;
            // The step names its new attempt, with no request yet (unless the patch gives the
            // one it re-attaches to), in the patch's own statement: one round trip, not two, in
            // the group commit a wave's claims wait for.
            await updateStep(client, attempt.runId, attempt.address, {
              ...step,
              attempt: step.attempt ?? attempt.attempt,
              requestId: step.requestId ?? null,
            });
            return true;
          },
          undefined,
          this.#claimer,
        );
        if (won) {
          prior.startAttempt(attempt);
          mirrorStepPatch(attempt.runId, attempt.address, step);
        }
        return won;
      },
      recordClaimedRequestId: async (key, worker, requestId, at, step) => {
        const won = await write(async (client) => {
          const { rowCount } = await client.query(
            `UPDATE attempts SET request_id = $1, submitted_at = $2, state = 'submitted'
             WHERE run_id = $3 AND address = $4 AND attempt = $5 AND claimed_by = $6
               AND state = 'submitting' AND request_id IS NULL`,
            [requestId, at, key.runId, key.address, key.attempt, worker],
          );
          if (rowCount === 0) return false;
          if (step) await updateStep(client, key.runId, key.address, { ...step, requestId });
          else
            await client.query(
              "UPDATE steps SET request_id = $1, updated_at = $2 WHERE run_id = $3 AND address = $4 AND attempt = $5",
              [requestId, at, key.runId, key.address, key.attempt],
            );
          return true;
        });
        if (won) {
          prior.recordRequestId(key, requestId, at);
          if (step) mirrorStepPatch(key.runId, key.address, { ...step, requestId });
        }
        return won;
      },
      abandon: async (key, error, at, step) => {
        const won = await write(async (client) => {
          const { rowCount } = await client.query(
            `UPDATE attempts SET state = 'unknown', error = $1, finished_at = $2
             WHERE run_id = $3 AND address = $4 AND attempt = $5 AND state = 'submitting' AND request_id IS NULL`,
            [text(error), at, key.runId, key.address, key.attempt],
          );
          if (rowCount === 0) return false;
          await updateStep(client, key.runId, key.address, step);
          return true;
        });
        if (won) {
          prior.patchAttempt(key, { state: "unknown", error, finishedAt: at });
          mirrorStepPatch(key.runId, key.address, step);
        }
        return won;
      },
      list: async (runId, address) => {
        if (address !== undefined) {
          // A worker reads the attempts of each delivery's step: a wave's reads go as one query.
          const listed = await this.#batchedRead<AttemptRecord[]>(
            `attempts ${runId}`,
            address,
            async (client, addresses) => {
              const { rows } = await client.query<AttemptRow>(
                `SELECT ${ATTEMPT_COLUMNS} FROM attempts a WHERE a.run_id = $1 AND a.address = ANY($2) ORDER BY a.seq`,
                [runId, addresses],
              );
              const byStep = new Map<string, AttemptRecord[]>();
              for (const row of rows) {
                const record = toAttemptRecord(row);
                let list = byStep.get(record.address);
                if (!list) byStep.set(record.address, (list = []));
                list.push(record);
              }
              return byStep;
            },
          );
          return listed ?? [];
        }
        return read(async (client) => {
          const { rows } = await client.query<AttemptRow>(
            `SELECT ${ATTEMPT_COLUMNS} FROM attempts a WHERE a.run_id = $1 ORDER BY a.seq`,
            [runId],
          );
          return rows.map(toAttemptRecord);
        });
      },
    };

    const insertAttempt = (client: Queryable, attempt: NewAttempt, claimedBy?: string) => {
      const reattach = attempt.reattach;
      // An attempt is made at its run's API origin. A claim (claimedBy) of an attempt that
      // exists already inserts nothing: the first claim to commit wins (SPEC §10).
      return client.query(
        `INSERT INTO attempts (run_id, address, attempt, workflow_name, fingerprint, request_id, state,
           reattached_from_run, started_at, submitted_at, api_origin, claimed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT api_origin FROM runs WHERE id = $1), $11)
         ${claimedBy === undefined ? "" : "ON CONFLICT (run_id, address, attempt) DO NOTHING"}`,
        [
          attempt.runId,
          attempt.address,
          attempt.attempt,
          attempt.workflowName,
          attempt.fingerprint,
          reattach?.requestId ?? null,
          reattach ? "submitted" : "submitting",
          reattach?.fromRunId ?? null,
          attempt.startedAt,
          reattach ? attempt.startedAt : null,
          claimedBy ?? null,
        ],
      );
    };

    // A run's budget: every change locks the run's budget row first, so the decisions of all
    // the processes executing its steps are made one after the other (budget-ledger.ts).
    const lockedBudget = async (client: Queryable, runId: string) => {
      const { rows } = await client.query<BudgetRow>(
        "SELECT * FROM run_budgets WHERE run_id = $1 FOR UPDATE",
        [runId],
      );
      return rows[0] && budgetFigures(rows[0]);
    };
    const reservationOf = async (client: Queryable, key: AttemptKey) => {
      const { rows } = await client.query<Reservation>(
        "SELECT attempt, micros, state FROM budget_reservations WHERE run_id = $1 AND address = $2 AND attempt = $3",
        [key.runId, key.address, key.attempt],
      );
      return rows[0];
    };
    /** The attempt's reservation, and its step's newest one of an earlier attempt. */
    const reservationsOf = async (client: Queryable, key: AttemptKey) => {
      const { rows } = await client.query<Reservation>(
        `SELECT attempt, micros, state FROM budget_reservations WHERE run_id = $1 AND address = $2 AND attempt < $3
         ORDER BY attempt DESC LIMIT 1`,
        [key.runId, key.address, key.attempt],
      );
      return [await reservationOf(client, key), rows[0]] as const;
    };
    const addToBudget = (client: Queryable, runId: string, reservedDelta: number, spentDelta: number) =>
      client.query(
        `UPDATE run_budgets SET reserved_micros = reserved_micros + $1, spent_micros = spent_micros + $2
         WHERE run_id = $3`,
        [reservedDelta, spentDelta, runId],
      );
    const insertReservation = (client: Queryable, key: AttemptKey, micros: number, state: string) =>
      client.query(
        `INSERT INTO budget_reservations (run_id, address, attempt, micros, state) VALUES ($1, $2, $3, $4, $5)`,
        [key.runId, key.address, key.attempt, micros, state],
      );
    /** Writes an attempt's end (budget-ledger.ts); false when there was nothing to write. */
    const endAttempt = async (
      client: Queryable,
      key: AttemptKey,
      end: EndOfAttempt | undefined,
      state: "settled" | "released",
    ) => {
      if (!end) return false;
      if (end.move !== undefined)
        await client.query(
          "UPDATE budget_reservations SET state = $1 WHERE run_id = $2 AND address = $3 AND attempt = $4",
          [state, key.runId, key.address, end.move],
        );
      if (end.insert) await insertReservation(client, key, 0, state);
      await addToBudget(client, key.runId, end.reservedDelta, end.spentDelta);
      return true;
    };

    this.budgets = {
      open: (runId, budget) =>
        write(async (client) => {
          await client.query("INSERT INTO run_budgets (run_id, max_micros) VALUES ($1, $2)", [
            runId,
            budget.maxMicros,
          ]);
          for (const [model, micros] of Object.entries(budget.estimates))
            await client.query(
              "INSERT INTO budget_models (run_id, model, estimate_micros) VALUES ($1, $2, $3)",
              [runId, model, micros],
            );
        }),
      get: (runId) =>
        read(async (client) => {
          const { rows } = await client.query<BudgetRow>("SELECT * FROM run_budgets WHERE run_id = $1", [
            runId,
          ]);
          return rows[0] && budgetFigures(rows[0]);
        }),
      reserve: (key, model) =>
        write(async (client) => {
          const figures = await lockedBudget(client, key.runId);
          if (!figures) throw new Error(`reserve: run ${key.runId} has no budget`);
          const { rows } = await client.query<{
            estimate_micros: number | null;
            actual_micros: number;
            actual_count: number;
          }>(
            "SELECT estimate_micros, actual_micros, actual_count FROM budget_models WHERE run_id = $1 AND model = $2",
            [key.runId, model],
          );
          const costs = rows[0] && {
            estimateMicros: rows[0].estimate_micros ?? undefined,
            actualMicros: rows[0].actual_micros,
            actualCount: rows[0].actual_count,
          };
          const decision = decideReserve(figures, await reservationOf(client, key), costs);
          if (!decision.granted) {
            await client.query("UPDATE run_budgets SET reached = true, held = held + 1 WHERE run_id = $1", [
              key.runId,
            ]);
            return { ...figures, reached: true, held: figures.held + 1, granted: false };
          }
          const micros = decision.reserveMicros;
          if (micros === undefined) return { ...figures, granted: true };
          await insertReservation(client, key, micros, "reserved");
          await addToBudget(client, key.runId, micros, 0);
          return { ...figures, reservedMicros: figures.reservedMicros + micros, granted: true };
        }),
      settle: (key, model, actual) =>
        write(async (client) => {
          if (!(await lockedBudget(client, key.runId))) return;
          const [own, earlier] = await reservationsOf(client, key);
          if (!(await endAttempt(client, key, decideSettle(own, earlier, actual), "settled"))) return;
          if (actual !== undefined)
            await client.query(
              `INSERT INTO budget_models (run_id, model, estimate_micros, actual_micros, actual_count)
               VALUES ($1, $2, NULL, $3, 1)
               ON CONFLICT (run_id, model) DO UPDATE SET
                 actual_micros = budget_models.actual_micros + excluded.actual_micros,
                 actual_count = budget_models.actual_count + 1`,
              [key.runId, model, actual],
            );
        }),
      release: (key) =>
        write(async (client) => {
          if (!(await lockedBudget(client, key.runId))) return;
          const [own, earlier] = await reservationsOf(client, key);
          await endAttempt(client, key, decideRelease(own, earlier), "released");
        }),
    };

    this.workers = {
      beat: (worker) =>
        write(async (client) => {
          await client.query(
            `INSERT INTO workers (name, host, pid, started_at, seen_at, doing) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,
               started_at = excluded.started_at, seen_at = excluded.seen_at, doing = excluded.doing`,
            [worker.name, worker.host, worker.pid, worker.startedAt, worker.seenAt, worker.doing.join("\n")],
          );
        }),
      leave: (name) =>
        write(async (client) => {
          await client.query("DELETE FROM workers WHERE name = $1", [name]);
        }),
      list: (since) =>
        read(async (client) => {
          const { rows } = await client.query<{
            name: string;
            host: string;
            pid: number;
            started_at: string | number;
            seen_at: string | number;
            doing: string;
          }>(
            "SELECT name, host, pid, started_at, seen_at, doing FROM workers WHERE seen_at >= $1 ORDER BY name",
            [since],
          );
          return rows.map((row) => ({
            name: row.name,
            host: row.host,
            pid: row.pid,
            startedAt: Number(row.started_at),
            seenAt: Number(row.seen_at),
            doing: row.doing === "" ? [] : row.doing.split("\n"),
          }));
        }),
    };

    this.outputs = {
      record: (outputs) =>
        write(async (client) => {
          for (const output of outputs) await recordOutput(client, output);
        }),
      list: (runId, address) =>
        read(async (client) => {
          const { rows } =
            address === undefined
              ? await client.query<OutputRow>(
                  `SELECT o.* FROM outputs o JOIN steps s ON s.run_id = o.run_id AND s.address = o.address
                   WHERE o.run_id = $1 ORDER BY s.position NULLS FIRST, s.seq, o.seq`,
                  [runId],
                )
              : await client.query<OutputRow>(
                  "SELECT * FROM outputs WHERE run_id = $1 AND address = $2 ORDER BY seq",
                  [runId, address],
                );
          return rows.map(toOutputRecord);
        }),
      recordInputCapture: (capture: NewInputCapture) =>
        write((client) =>
          client.query(
            `INSERT INTO input_captures (run_id, url, address, path, bytes, sha256, error, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (run_id, url) DO UPDATE SET
               address = excluded.address, path = excluded.path, bytes = excluded.bytes,
               sha256 = excluded.sha256, error = excluded.error, created_at = excluded.created_at`,
            [
              capture.runId,
              withoutNul(capture.url),
              capture.address,
              capture.path === undefined ? null : withoutNul(capture.path),
              capture.bytes ?? null,
              capture.sha256 ?? null,
              text(capture.error),
              capture.createdAt,
            ],
          ),
        ).then(() => undefined),
      inputCaptures: (runIds) =>
        read(async (client) => {
          const records: InputCaptureRecord[] = [];
          for (const runId of new Set(runIds)) {
            const { rows } = await client.query<InputCaptureRow>(
              "SELECT * FROM input_captures WHERE run_id = $1 ORDER BY seq",
              [runId],
            );
            records.push(...rows.map(toInputCaptureRecord));
          }
          return records;
        }),
    };

    this.locks = {
      acquire: (workflowName, holder, options) =>
        write(async (client) => {
          // Serialises every acquire of this workflow's lock across processes, also while
          // no row exists yet (a row lock needs a row); released at commit.
          await client.query("SELECT pg_advisory_xact_lock(hashtextextended('runflow lock ' || $1, 0))", [
            workflowName,
          ]);
          const { rows } = await client.query<LockRow>(
            "SELECT * FROM locks WHERE workflow_name = $1 FOR UPDATE",
            [workflowName],
          );
          const decision = decideLock(rows[0] && toLockHolder(rows[0]), holder, {
            now: options.now,
            staleAfterMs: options.staleAfterMs,
            isProcessAlive: options.isProcessAlive ?? isProcessAlive,
          });
          if (decision.action === "refuse") return { acquired: false as const, holder: decision.holder };
          if (decision.action === "refresh") {
            await client.query(
              "UPDATE locks SET heartbeat_at = $1 WHERE workflow_name = $2 AND run_id = $3",
              [options.now, workflowName, holder.runId],
            );
            return { acquired: true as const };
          }
          await client.query(
            `INSERT INTO locks (workflow_name, run_id, pid, hostname, acquired_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (workflow_name) DO UPDATE SET run_id = excluded.run_id, pid = excluded.pid,
               hostname = excluded.hostname, acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at`,
            [workflowName, holder.runId, holder.pid, holder.hostname, options.now],
          );
          return decision.action === "take_over"
            ? { acquired: true as const, tookOverFrom: decision.from }
            : { acquired: true as const };
        }),
      heartbeat: (workflowName, runId, now) =>
        write(async (client) => {
          const { rowCount } = await client.query(
            "UPDATE locks SET heartbeat_at = $1 WHERE workflow_name = $2 AND run_id = $3",
            [now, workflowName, runId],
          );
          return (rowCount ?? 0) > 0;
        }),
      release: (workflowName, runId) =>
        write((client) =>
          client.query("DELETE FROM locks WHERE workflow_name = $1 AND run_id = $2", [workflowName, runId]),
        ).then(() => undefined),
      get: (workflowName) =>
        read(async (client) => {
          const { rows } = await client.query<LockRow>("SELECT * FROM locks WHERE workflow_name = $1", [
            workflowName,
          ]);
          return rows[0] && toLockHolder(rows[0]);
        }),
    };

    const stepCosts = (runId: string) =>
      read(async (client) => {
        const { rows } = await client.query<{
          address: string;
          micros: number | null;
          known: number;
          unknown: number;
        }>(
          `SELECT address, sum(cost_micros)::bigint AS micros, count(cost_micros) AS known,
             count(*) FILTER (WHERE cost_micros IS NULL AND (state = 'unknown'
               OR (request_id IS NOT NULL AND state IN ('succeeded', 'failed', 'timed_out')))) AS unknown
           FROM attempts WHERE run_id = $1 GROUP BY address ORDER BY address`,
          [runId],
        );
        const costs = new Map<string, CostTotal>();
        for (const row of rows) {
          if (row.known === 0 && row.unknown === 0) continue;
          costs.set(row.address, { micros: row.micros ?? 0, known: row.known, unknown: row.unknown });
        }
        return costs;
      });

    this.history = {
      priorRuns: (workflowName) => this.#priorRuns(workflowName),
      // Asked for each delivery while the model's duration is unknown: a wave's asks share a read.
      typicalDuration: (model, apiOrigin) =>
        this.#sharedRead(`typical ${JSON.stringify([model, apiOrigin])}`, async (client) => {
          const { rows } = await client.query<{ server_ms: number }>(
            `SELECT a.server_ms FROM attempts a JOIN steps s ON s.run_id = a.run_id AND s.address = a.address
             WHERE s.model = $1 AND a.api_origin = $2 AND a.server_ms IS NOT NULL ORDER BY a.seq DESC LIMIT $3`,
            [model, apiOrigin, TYPICAL_SAMPLE],
          );
          return toTypicalDuration(rows.map((row) => row.server_ms));
        }),
      learnedCost: (model, apiOrigin) =>
        read(async (client) => {
          const { rows } = await client.query<{ cost_micros: number }>(
            `SELECT a.cost_micros FROM attempts a JOIN steps s ON s.run_id = a.run_id AND s.address = a.address
             WHERE s.model = $1 AND a.api_origin = $2 AND a.state = 'succeeded' AND a.cost_micros IS NOT NULL
             ORDER BY a.seq DESC LIMIT $3`,
            [model, apiOrigin, TYPICAL_SAMPLE],
          );
          if (rows.length === 0) return undefined;
          const sum = rows.reduce((total, row) => total + row.cost_micros, 0);
          return { micros: Math.round(sum / rows.length), requests: rows.length };
        }),
      runCost: async (runId) => {
        const total: CostTotal = { micros: 0, known: 0, unknown: 0 };
        for (const cost of (await stepCosts(runId)).values()) {
          total.micros += cost.micros;
          total.known += cost.known;
          total.unknown += cost.unknown;
        }
        return total;
      },
      stepCosts,
      recordPrice: (price: PriceRecord) =>
        write((client) =>
          client.query(
            `INSERT INTO model_prices (api_origin, model_id, micros, unit, note, read_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (api_origin, model_id) DO UPDATE SET
               micros = excluded.micros, unit = excluded.unit, note = excluded.note, read_at = excluded.read_at`,
            [price.apiOrigin, price.modelId, price.micros, price.unit, price.note ?? null, price.readAt],
          ),
        ).then(() => undefined),
      pricesAt: (apiOrigin) =>
        read(async (client) => {
          const { rows } = await client.query<{
            model_id: string;
            micros: number;
            unit: "second" | "output";
            note: string | null;
            read_at: number;
          }>("SELECT model_id, micros, unit, note, read_at FROM model_prices WHERE api_origin = $1", [
            apiOrigin,
          ]);
          return new Map(
            rows.map((row): [string, PriceRecord] => [
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
        }),
    };
  }

  /**
   * The lookup of a workflow's earlier runs: fetched in queue order (it sees exactly the
   * writes issued before this call), then kept current by every later write of this store.
   */
  #priorRuns(workflowName: string): Promise<PriorRunsLookup> {
    // A fetch still waiting in the queue has not read anything yet: it will see every write
    // committed before this call too, so this call shares it. A cluster's worker asks for
    // every delivery; a wave of 20 deliveries costs one fetch instead of 20 in the writer's
    // queue, ahead of their claims.
    const queued = this.#queuedPriorFetches.get(workflowName);
    if (queued) return queued;
    const fetched = this.#fetchPriorRuns(workflowName);
    this.#queuedPriorFetches.set(workflowName, fetched);
    // Settled without having started (the store closed): the next call fetches anew.
    const forget = () => {
      if (this.#queuedPriorFetches.get(workflowName) === fetched)
        this.#queuedPriorFetches.delete(workflowName);
    };
    fetched.then(forget, forget);
    return fetched;
  }

  async #fetchPriorRuns(workflowName: string): Promise<PriorRunsLookup> {
    const fetching = this.#prior.beginFetch(workflowName);
    const fetch = async (client: Queryable) => {
      // From here on, a new call waits for a fetch of its own (this one may miss its writes).
      this.#queuedPriorFetches.delete(workflowName);
      const succeeded = await client.query(SUCCEEDED_SQL, [workflowName]);
      const inFlight = await client.query<AttemptRow>(IN_FLIGHT_SQL, [workflowName]);
      return { succeeded: succeeded.rows, inFlight: inFlight.rows };
    };
    try {
      const rows = this.readonly ? await this.#read(fetch) : await this.#enqueue(fetch);
      return fetching.complete(rows.succeeded as Parameters<typeof fetching.complete>[0], rows.inFlight);
    } catch (error) {
      fetching.abandon();
      throw error;
    }
  }

  /**
   * Queues a write (applied to the lookups at once, by `mirror`) in `lane` (the writer's
   * unless said); resolves once committed.
   */
  #enqueue<T>(
    run: (client: Queryable) => Promise<T>,
    mirror?: () => void,
    lane: WriteLane | undefined = this.#writer,
  ): Promise<T> {
    if (lane === undefined) return Promise.reject(readonlyError(this.location));
    if (this.#closed) return Promise.reject(new Error(`the state store ${this.location} is closed`));
    if (this.#lost) return Promise.reject(this.#lost);
    mirror?.();
    return new Promise<T>((resolve, reject) => {
      const operation: QueuedOperation = { run, resolve: resolve as (value: unknown) => void, reject };
      if (lane.open) {
        lane.open.push(operation);
        return;
      }
      const group = [operation];
      lane.open = group;
      lane.tail = lane.tail.then(() => this.#commitGroup(lane, group));
      this.#tail = Promise.all([this.#writer!.tail, this.#claimer!.tail]).then(() => undefined);
    });
  }

  /** Runs one group: one transaction; should it fail, each write again on its own. Never rejects. */
  async #commitGroup(lane: WriteLane, group: QueuedOperation[]): Promise<void> {
    // The writes of this turn of the event loop join the group before it is sealed.
    await new Promise((resolve) => setImmediate(resolve));
    lane.open = undefined;
    const writer = lane.client;
    if (this.#lost) {
      for (const operation of group) operation.reject(this.#lost);
      return;
    }
    const results: unknown[] = [];
    try {
      await writer.query("BEGIN");
      for (const operation of group) results.push(await operation.run(writer));
      await writer.query("COMMIT");
      group.forEach((operation, index) => operation.resolve(results[index]));
      return;
    } catch (error) {
      if (this.#connectionGone(error)) {
        for (const operation of group) operation.reject(this.#lost!);
        return;
      }
      await writer.query("ROLLBACK").catch(() => undefined);
      if (group.length === 1) {
        group[0]!.reject(error as Error);
        return;
      }
    }
    // One write of the group was refused: each runs alone, so that only that one rejects.
    for (const operation of group) {
      try {
        await writer.query("BEGIN");
        const result = await operation.run(writer);
        await writer.query("COMMIT");
        operation.resolve(result);
      } catch (error) {
        if (this.#connectionGone(error)) {
          operation.reject(this.#lost!);
          continue;
        }
        await writer.query("ROLLBACK").catch(() => undefined);
        operation.reject(error as Error);
      }
    }
  }

  #connectionGone(error: unknown): boolean {
    if (this.#lost) return true;
    if (!isConnectionError(error)) return false;
    this.#lost = connectionLostError(this.location, error);
    return true;
  }

  /** A read: after every write issued before it, on a pooled connection. */
  async #read<T>(query: (client: Queryable) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error(`the state store ${this.location} is closed`);
    await this.#tail;
    try {
      return await query(this.#pool);
    } catch (error) {
      throw isConnectionError(error) ? connectionLostError(this.location, error) : error;
    }
  }

  /**
   * A read that calls asking for the same (`key`) share while it has not started: it is
   * issued after every one of them, so it sees every write committed before each call, as a
   * read of their own would. Once it holds a connection, a new call reads for itself (this
   * one may miss what commits from then on). A wave of 20 deliveries costs one read instead
   * of 20 in the pool's queue, ahead of their claims. Only while no write of this store was
   * queued in a new group since it was asked for: a read waits for the writes queued before
   * it (#read), and a call must see its own process's earlier writes.
   */
  #sharedRead<T>(key: string, query: (client: Queryable) => Promise<T>): Promise<T> {
    const queued = this.#queuedReads.get(key);
    if (queued && queued.after === this.#tail) return queued.reading as Promise<T>;
    const forget = () => {
      if (this.#queuedReads.get(key)?.reading === reading) this.#queuedReads.delete(key);
    };
    const reading = this.#read(async () => {
      const client = await this.#pool.connect();
      forget();
      try {
        return await query(client);
      } finally {
        client.release();
      }
    });
    this.#queuedReads.set(key, { after: this.#tail, reading });
    // Settled without having started (the store closed, no connection): the next call reads anew.
    reading.then(forget, forget);
    return reading;
  }

  /**
   * One row (or list) by `key` of rows of one `kind`, read with the other keys asked for
   * while that read waits for a session, as one query (`fetch` gets every key and answers a
   * map; a key it leaves out is undefined). As in #sharedRead, the query is issued after every
   * call that joins it, so each sees what committed before its call; once it holds a session,
   * a new call starts the next one; so does a call made after a write of this store was
   * queued in a new group (it must see its own process's writes). A wave's 20 deliveries
   * read their steps in one query.
   */
  #batchedRead<T>(
    kind: string,
    key: string,
    fetch: (client: Queryable, keys: string[]) => Promise<Map<string, T>>,
  ): Promise<T | undefined> {
    let batch = this.#queuedBatches.get(kind);
    if (batch?.after !== this.#tail) {
      const keys = new Set<string>();
      const after = this.#tail;
      const forget = () => {
        if (this.#queuedBatches.get(kind) === started) this.#queuedBatches.delete(kind);
      };
      const rows = this.#read(async () => {
        const client = await this.#pool.connect();
        forget();
        try {
          return await fetch(client, [...keys]);
        } finally {
          client.release();
        }
      });
      const started = { after, keys, rows };
      rows.then(forget, forget);
      this.#queuedBatches.set(kind, started);
      batch = started;
    }
    batch.keys.add(key);
    return batch.rows.then((found) => found.get(key) as T | undefined);
  }

  #json(value: unknown): string {
    return this.#redact(JSON.stringify(value) ?? "null");
  }

  #text(value: string | undefined): string | null {
    return value === undefined ? null : withoutNul(this.#redact(value));
  }

  /** Waits for every write (they resolve or reject on their own), then ends the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#tail;
    this.#closed = true;
    await Promise.allSettled([this.#writer?.client.end(), this.#claimer?.client.end(), this.#pool.end()]);
  }
}

/**
 * Opens the PostgreSQL state store at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`):
 * connects, and (unless reading only) brings the schema up to date under an advisory lock.
 */
export async function openPostgresStateStore(
  url: string,
  options: PostgresStateStoreOptions = {},
): Promise<PostgresStateStore> {
  const location = describePostgresLocation(url);
  const redact = makeRedactor(options.secrets ?? tokensFromEnvironment(process.env));
  const connection: pg.ClientConfig = {
    connectionString: url,
    types: NUMBERS,
    application_name: "runflow",
    // A write resolves only once durable: never let a server default turn this off.
    options: "-c synchronous_commit=on",
  };
  const pool = new pg.Pool({ ...connection, max: options.readConnections ?? 4 });
  // An idle pooled connection that dies emits "error": the next read reconnects.
  pool.on("error", () => undefined);
  const writer = options.readonly ? undefined : new pg.Client(connection);
  const claimer = options.readonly ? undefined : new pg.Client(connection);
  writer?.on("error", () => undefined);
  claimer?.on("error", () => undefined);
  try {
    const client = writer ?? (await pool.connect());
    if (writer) await Promise.all([writer.connect(), claimer!.connect()]);
    try {
      const found = await postgresSchemaVersion(client);
      if (found > LATEST_POSTGRES_SCHEMA_VERSION)
        throw newerSchemaError(location, found, LATEST_POSTGRES_SCHEMA_VERSION);
      if (options.readonly) {
        if (found === 0) throw missingStateError(location);
        if (found < LATEST_POSTGRES_SCHEMA_VERSION) {
          if (options.neverWrite)
            throw new StateStoreError(
              "state_schema_older",
              location,
              `${location} has an older runflow schema (${found}, this one knows ${LATEST_POSTGRES_SCHEMA_VERSION})`,
              { hint: "run `runflow status` (or any command that may write) once to upgrade it" },
            );
          await migratePostgres(client, location);
        }
      } else if (found < LATEST_POSTGRES_SCHEMA_VERSION) {
        await migratePostgres(client, location);
      }
    } finally {
      if (client !== writer) (client as pg.PoolClient).release();
    }
  } catch (error) {
    await Promise.allSettled([writer?.end(), claimer?.end(), pool.end()]);
    if (error instanceof RunflowError) throw error;
    // Refused, unknown host, wrong password, no such database: the URL or the server.
    throw unreachableError(location, error);
  }
  return new PostgresStateStore(pool, writer && { writer, claimer: claimer! }, location, redact);
}
