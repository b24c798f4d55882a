import type { Database } from "better-sqlite3";
import { newerSchemaError } from "./errors.js";
import { SQLITE_SCHEMA } from "./sqlite-schema.js";

/**
 * The SQLite schema, as numbered migrations. Append only: a released migration is never
 * edited, a change is a new entry. The version applied last is kept in `PRAGMA user_version`.
 * The SQL lives in code so the built package needs no copied .sql files.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "runs, steps, attempts, outputs, locks",
    sql: `
      CREATE TABLE runs (
        id                  TEXT PRIMARY KEY,
        workflow_name       TEXT NOT NULL,
        workflow_file       TEXT NOT NULL,
        kind                TEXT NOT NULL CHECK (kind IN ('apply', 'retry')),
        parent_run_id       TEXT REFERENCES runs (id),
        status              TEXT NOT NULL DEFAULT 'running',
        exit_code           INTEGER,
        plan_json           TEXT NOT NULL,
        options_json        TEXT NOT NULL,
        counts_json         TEXT,
        pid                 INTEGER NOT NULL,
        hostname            TEXT NOT NULL,
        started_at          INTEGER NOT NULL,
        finished_at         INTEGER,
        cancel_requested_at INTEGER
      );
      CREATE INDEX runs_by_workflow ON runs (workflow_name, started_at);
      CREATE INDEX runs_by_start ON runs (started_at);

      -- One row per step of a run, in plan order (rowid). attempt and request_id mirror the
      -- newest attempt so status needs no join.
      CREATE TABLE steps (
        run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        address         TEXT NOT NULL,
        job_id          TEXT NOT NULL,
        instance_key    TEXT NOT NULL,
        step_id         TEXT NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('model', 'run')),
        model           TEXT,
        state           TEXT NOT NULL,
        attempt         INTEGER NOT NULL DEFAULT 0,
        fingerprint     TEXT,
        input_json      TEXT,
        output_json     TEXT,
        files_json      TEXT,
        stdout          TEXT,
        error           TEXT,
        request_id      TEXT,
        reused_from_run TEXT,
        queue_position  INTEGER,
        created_at      INTEGER NOT NULL,
        started_at      INTEGER,
        finished_at     INTEGER,
        updated_at      INTEGER NOT NULL,
        PRIMARY KEY (run_id, address)
      );
      CREATE INDEX steps_by_state ON steps (run_id, state);
      -- Reuse looks up succeeded steps by fingerprint; only those rows are indexed.
      CREATE INDEX steps_succeeded_by_fingerprint ON steps (fingerprint, finished_at)
        WHERE state = 'succeeded';

      -- One row per remote submission. seq orders attempts across runs.
      CREATE TABLE attempts (
        seq                 INTEGER PRIMARY KEY,
        run_id              TEXT NOT NULL,
        address             TEXT NOT NULL,
        attempt             INTEGER NOT NULL,
        workflow_name       TEXT NOT NULL,
        fingerprint         TEXT NOT NULL,
        request_id          TEXT,
        state               TEXT NOT NULL,
        queue_position      INTEGER,
        error               TEXT,
        reattached_from_run TEXT,
        started_at          INTEGER NOT NULL,
        submitted_at        INTEGER,
        finished_at         INTEGER,
        UNIQUE (run_id, address, attempt),
        FOREIGN KEY (run_id, address) REFERENCES steps (run_id, address) ON DELETE CASCADE
      );
      CREATE INDEX attempts_by_fingerprint ON attempts (workflow_name, fingerprint, address);
      -- Resume scans only the attempts whose request may still exist.
      CREATE INDEX attempts_open ON attempts (workflow_name)
        WHERE state IN ('submitting', 'submitted', 'in_queue', 'in_progress', 'unknown');

      CREATE TABLE outputs (
        run_id     TEXT NOT NULL,
        address    TEXT NOT NULL,
        name       TEXT NOT NULL,
        idx        INTEGER,
        url        TEXT NOT NULL,
        path       TEXT,
        bytes      INTEGER,
        sha256     TEXT,
        created_at INTEGER NOT NULL,
        FOREIGN KEY (run_id, address) REFERENCES steps (run_id, address) ON DELETE CASCADE
      );
      -- A single output has no index; -1 stands for it so the pair stays unique.
      CREATE UNIQUE INDEX outputs_by_step ON outputs (run_id, address, name, coalesce(idx, -1));

      -- At most one live apply per workflow. No foreign key: the lock is taken before the run exists.
      CREATE TABLE locks (
        workflow_name TEXT PRIMARY KEY,
        run_id        TEXT NOT NULL,
        pid           INTEGER NOT NULL,
        hostname      TEXT NOT NULL,
        acquired_at   INTEGER NOT NULL,
        heartbeat_at  INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: "attempts remember how long the API took",
    // finished_at − created_at as the API measured it, for succeeded attempts: the next run
    // starts polling each model at its typical duration instead of guessing.
    sql: `ALTER TABLE attempts ADD COLUMN server_ms INTEGER;`,
  },
  {
    version: 3,
    name: "a run's stored plan may come in parts",
    // A big run writes its plan's steps beside its step rows, a part per slice: one 11 MB
    // value for 100,000 steps made a run's start its memory peak.
    sql: `
      CREATE TABLE run_plan_parts (
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        part       INTEGER NOT NULL,
        steps_json TEXT NOT NULL,
        PRIMARY KEY (run_id, part)
      );
    `,
  },
  {
    version: 4,
    name: "steps keep their place in the plan",
    // A run records its steps as they are planned, and a resumed run plans what is left to
    // do first: the place in the plan is kept apart from the order of insertion (rowid).
    sql: `ALTER TABLE steps ADD COLUMN position INTEGER;`,
  },
  {
    version: 5,
    name: "no index of steps by state",
    // Every state change of every step updated it: about a tenth of a zero-duration step's
    // CPU (1,100 against 940 steps/s, measured side by side). What reads steps by state
    // (status, retry) reads one run's rows through the primary key instead.
    sql: `DROP INDEX steps_by_state;`,
  },
  {
    version: 6,
    name: "runs and attempts remember their API origin; a run taken over says by whom",
    // Results, re-attachment and durations belong to the API that produced them: an
    // emulator's test video is not a RunComfy result. Attempts carry their run's origin so
    // resume finds them without a join. Rows from before have no origin (NULL, unknown)
    // and match no origin: nothing of theirs is reused, re-attached or learned from, except
    // the runs of `apply --emulator`, which said so in their options.
    // finished_by_run: the later run that finished the steps this one left unfinished.
    sql: `
      ALTER TABLE runs ADD COLUMN api_origin TEXT;
      ALTER TABLE runs ADD COLUMN finished_by_run TEXT;
      ALTER TABLE attempts ADD COLUMN api_origin TEXT;
      UPDATE runs SET api_origin = 'emulator' WHERE json_extract(options_json, '$.emulator') = 1;
      UPDATE attempts SET api_origin = 'emulator'
        WHERE run_id IN (SELECT id FROM runs WHERE api_origin = 'emulator');
    `,
  },
  {
    version: 7,
    name: "what each attempt cost, and the prices read from each API",
    // cost_micros: what the API reported the request cost, in micro-dollars (1 USD =
    // 1,000,000, integers so sums never drift); NULL when it reported none (unknown, never 0).
    // Prices belong to the API origin they were read from, like results; the newest reading
    // of a model's price is kept with when it was read.
    sql: `
      ALTER TABLE attempts ADD COLUMN cost_micros INTEGER;
      CREATE TABLE model_prices (
        api_origin TEXT NOT NULL,
        model_id   TEXT NOT NULL,
        micros     INTEGER NOT NULL,
        unit       TEXT NOT NULL CHECK (unit IN ('second', 'output')),
        note       TEXT,
        read_at    INTEGER NOT NULL,
        PRIMARY KEY (api_origin, model_id)
      );
    `,
  },
  {
    version: 8,
    name: "a run keeps the input stills it captured",
    // A model step's input image on the user's media host, downloaded when the step was
    // submitted (engine/input-captures.ts), so the run's report still shows it once the URL
    // is gone. One row per run and URL (a URL used by many steps is captured once); `path`
    // is NULL and `error` says why when the capture failed. Not outputs: no step's `files`,
    // fingerprint or reuse ever reads them.
    sql: `
      CREATE TABLE input_captures (
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        url        TEXT NOT NULL,
        address    TEXT NOT NULL,
        path       TEXT,
        bytes      INTEGER,
        sha256     TEXT,
        error      TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, url)
      );
    `,
  },
  {
    version: 9,
    name: "the fence of a submission across processes, and the workers",
    // SPEC §10: the host that wrote each output file (a cluster's outputs folder is shared).
    // The process whose claim of an attempt committed first is the only one that
    // may submit it (`claimed_by`); a worker's heartbeat says whether a claimant is alive.
    // SQLite serves one process at a time, so here the fence is trivially won, but the port
    // and its conformance suite are the same as PostgreSQL's.
    sql: `
      ALTER TABLE attempts ADD COLUMN claimed_by TEXT;
      ALTER TABLE outputs ADD COLUMN host TEXT;
      CREATE TABLE workers (
        name       TEXT PRIMARY KEY,
        host       TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        seen_at    INTEGER NOT NULL,
        doing      TEXT NOT NULL DEFAULT ''
      );
    `,
  },
  {
    version: 10,
    name: "a run's budget, held in the state",
    // SPEC §9 across processes (§10): the cap of a run and where it stands (spent, reserved
    // for requests in flight, reached, held back), each model's estimate per request and what
    // its requests of the run actually cost (their mean raises the estimate), and one
    // reservation per attempt: reserved → settled (its cost spent) or released (nothing
    // created), never counted twice. Amounts in micro-dollars.
    sql: `
      CREATE TABLE run_budgets (
        run_id          TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
        max_micros      INTEGER NOT NULL,
        spent_micros    INTEGER NOT NULL DEFAULT 0,
        reserved_micros INTEGER NOT NULL DEFAULT 0,
        reached         INTEGER NOT NULL DEFAULT 0,
        held            INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE budget_models (
        run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        model           TEXT NOT NULL,
        estimate_micros INTEGER,
        actual_micros   INTEGER NOT NULL DEFAULT 0,
        actual_count    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, model)
      );
      CREATE TABLE budget_reservations (
        run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        micros  INTEGER NOT NULL,
        state   TEXT NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
        PRIMARY KEY (run_id, address, attempt)
      );
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((latest, m) => Math.max(latest, m.version), 0);

export function schemaVersion(db: Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/**
 * Brings the database to the latest schema: the pending migrations in order, in one
 * transaction (all or none of them: a new database is created in one commit rather than
 * one per migration, ≈ 2–5 ms of apply's start, docs/decisions.md "Start-up"). It runs
 * under `BEGIN IMMEDIATE` and re-reads the version inside it, so two processes opening a
 * fresh database at once apply every migration exactly once.
 *
 * A new database (version 0) is created from the schema the migrations build
 * (`sqlite-schema.ts`, written from them) in one statement batch instead: replaying them
 * cost ≈ 2 ms more of apply's start, each ALTER TABLE making SQLite parse the whole schema
 * again. Only with runflow's own migrations, and only while that file is of their version.
 */
export function migrate(db: Database, path: string, migrations: readonly Migration[] = MIGRATIONS): void {
  const known = migrations.reduce((latest, m) => Math.max(latest, m.version), 0);
  const found = schemaVersion(db);
  if (found > known) throw newerSchemaError(path, found, known);
  if (found === known) return;
  const whole = migrations === MIGRATIONS && SQLITE_SCHEMA.version === known ? SQLITE_SCHEMA : undefined;
  db.transaction(() => {
    if (whole && schemaVersion(db) === 0) {
      db.exec(whole.sql);
      db.pragma(`user_version = ${whole.version}`);
    } else {
      applyPending(db, migrations);
    }
  }).immediate();
}

/**
 * Every migration in turn, each committed on its own, as a database lived through the
 * releases: what `sqlite-schema.ts` is written from, and what its test compares it with.
 */
export function migrateStepByStep(db: Database, migrations: readonly Migration[] = MIGRATIONS): void {
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    db.transaction(() => applyPending(db, [migration])).immediate();
  }
}

/** The migrations newer than the database's version, in order, inside the caller's transaction. */
function applyPending(db: Database, migrations: readonly Migration[]): void {
  const current = schemaVersion(db);
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (migration.version <= current) continue;
    db.exec(migration.sql);
    // user_version is written in the database header, inside this transaction.
    db.pragma(`user_version = ${migration.version}`);
  }
}
