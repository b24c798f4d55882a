// Written by scripts/write-sqlite-schema.js from the migrations (src/store/migrations.ts); do not
// edit: add a migration, then run `npm run build && node scripts/write-sqlite-schema.js`.

/**
 * The schema the migrations up to `version` build, as SQLite stores it: a new database is
 * created from it in one statement batch instead of replaying each migration (a migration's
 * ALTER TABLE makes SQLite parse the whole schema again). test/sqlite-schema.test.ts checks
 * that a database created from it and one migrated step by step have the same schema.
 */
export const SQLITE_SCHEMA = {
  version: 10,
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
      , api_origin TEXT, finished_by_run TEXT);
CREATE INDEX runs_by_workflow ON runs (workflow_name, started_at);
CREATE INDEX runs_by_start ON runs (started_at);
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
        updated_at      INTEGER NOT NULL, position INTEGER,
        PRIMARY KEY (run_id, address)
      );
CREATE INDEX steps_succeeded_by_fingerprint ON steps (fingerprint, finished_at)
        WHERE state = 'succeeded';
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
        finished_at         INTEGER, server_ms INTEGER, api_origin TEXT, cost_micros INTEGER, claimed_by TEXT,
        UNIQUE (run_id, address, attempt),
        FOREIGN KEY (run_id, address) REFERENCES steps (run_id, address) ON DELETE CASCADE
      );
CREATE INDEX attempts_by_fingerprint ON attempts (workflow_name, fingerprint, address);
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
        created_at INTEGER NOT NULL, host TEXT,
        FOREIGN KEY (run_id, address) REFERENCES steps (run_id, address) ON DELETE CASCADE
      );
CREATE UNIQUE INDEX outputs_by_step ON outputs (run_id, address, name, coalesce(idx, -1));
CREATE TABLE locks (
        workflow_name TEXT PRIMARY KEY,
        run_id        TEXT NOT NULL,
        pid           INTEGER NOT NULL,
        hostname      TEXT NOT NULL,
        acquired_at   INTEGER NOT NULL,
        heartbeat_at  INTEGER NOT NULL
      );
CREATE TABLE run_plan_parts (
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        part       INTEGER NOT NULL,
        steps_json TEXT NOT NULL,
        PRIMARY KEY (run_id, part)
      );
CREATE TABLE model_prices (
        api_origin TEXT NOT NULL,
        model_id   TEXT NOT NULL,
        micros     INTEGER NOT NULL,
        unit       TEXT NOT NULL CHECK (unit IN ('second', 'output')),
        note       TEXT,
        read_at    INTEGER NOT NULL,
        PRIMARY KEY (api_origin, model_id)
      );
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
CREATE TABLE workers (
        name       TEXT PRIMARY KEY,
        host       TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        seen_at    INTEGER NOT NULL,
        doing      TEXT NOT NULL DEFAULT ''
      );
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
} as const;
