/**
 * The PostgreSQL schema of the state store, as numbered migrations of its own (the SQLite
 * ones are in migrations.ts and are not shared: the two schemas follow the same records but
 * speak different SQL). Append only: a released migration is never edited, a change is a new
 * entry. The versions applied are rows of `runflow_migrations`.
 *
 * How it differs from the SQLite schema, and why:
 * - Timestamps are BIGINT milliseconds (the store has no clock; callers pass them in).
 * - JSON columns are `json`, not `jsonb`: `json` keeps the text as written, like SQLite's
 *   TEXT — key order (a plan's jobs, a body as sent), and `\u0000` escapes, which `jsonb`
 *   refuses. Nothing queries inside them.
 * - `seq` (an identity column) stands for SQLite's rowid: the order rows were inserted in,
 *   which the lists and the "newest" questions fall back on.
 */
import type pg from "pg";
import { newerSchemaError } from "./errors.js";

export interface PostgresMigration {
  version: number;
  name: string;
  sql: string;
}

export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: "runs, steps, attempts, outputs, locks, plan parts, prices, input captures",
    sql: `
      CREATE TABLE runs (
        seq                 BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        id                  TEXT PRIMARY KEY,
        workflow_name       TEXT NOT NULL,
        workflow_file       TEXT NOT NULL,
        kind                TEXT NOT NULL CHECK (kind IN ('apply', 'retry')),
        parent_run_id       TEXT REFERENCES runs (id),
        status              TEXT NOT NULL DEFAULT 'running',
        exit_code           INTEGER,
        plan_json           JSON NOT NULL,
        options_json        JSON NOT NULL,
        counts_json         JSON,
        pid                 INTEGER NOT NULL,
        hostname            TEXT NOT NULL,
        started_at          BIGINT NOT NULL,
        finished_at         BIGINT,
        cancel_requested_at BIGINT,
        api_origin          TEXT,
        finished_by_run     TEXT
      );
      CREATE INDEX runs_by_workflow ON runs (workflow_name, started_at);
      CREATE INDEX runs_by_start ON runs (started_at);

      CREATE TABLE run_plan_parts (
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        part       INTEGER NOT NULL,
        steps_json JSON NOT NULL,
        PRIMARY KEY (run_id, part)
      );

      -- attempt and request_id mirror the newest attempt so status needs no join.
      CREATE TABLE steps (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY,
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
        input_json      JSON,
        output_json     JSON,
        files_json      JSON,
        stdout          TEXT,
        error           TEXT,
        request_id      TEXT,
        reused_from_run TEXT,
        queue_position  INTEGER,
        position        INTEGER,
        created_at      BIGINT NOT NULL,
        started_at      BIGINT,
        finished_at     BIGINT,
        updated_at      BIGINT NOT NULL,
        PRIMARY KEY (run_id, address)
      );
      -- Reuse looks up succeeded steps by fingerprint; only those rows are indexed.
      CREATE INDEX steps_succeeded_by_fingerprint ON steps (fingerprint, finished_at)
        WHERE state = 'succeeded';

      -- One row per remote submission; seq orders attempts across runs.
      CREATE TABLE attempts (
        seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
        api_origin          TEXT,
        server_ms           BIGINT,
        cost_micros         BIGINT,
        started_at          BIGINT NOT NULL,
        submitted_at        BIGINT,
        finished_at         BIGINT,
        UNIQUE (run_id, address, attempt),
        FOREIGN KEY (run_id, address) REFERENCES steps (run_id, address) ON DELETE CASCADE
      );
      CREATE INDEX attempts_by_fingerprint ON attempts (workflow_name, fingerprint, address);
      -- Resume scans only the attempts whose request may still exist.
      CREATE INDEX attempts_open ON attempts (workflow_name)
        WHERE state IN ('submitting', 'submitted', 'in_queue', 'in_progress', 'unknown');

      CREATE TABLE outputs (
        seq        BIGINT GENERATED ALWAYS AS IDENTITY,
        run_id     TEXT NOT NULL,
        address    TEXT NOT NULL,
        name       TEXT NOT NULL,
        idx        INTEGER,
        url        TEXT NOT NULL,
        path       TEXT,
        bytes      BIGINT,
        sha256     TEXT,
        created_at BIGINT NOT NULL,
        FOREIGN KEY (run_id, address) REFERENCES steps (run_id, address) ON DELETE CASCADE
      );
      -- A single output has no index; -1 stands for it so the pair stays unique.
      CREATE UNIQUE INDEX outputs_by_step ON outputs (run_id, address, name, (coalesce(idx, -1)));

      CREATE TABLE input_captures (
        seq        BIGINT GENERATED ALWAYS AS IDENTITY,
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        url        TEXT NOT NULL,
        address    TEXT NOT NULL,
        path       TEXT,
        bytes      BIGINT,
        sha256     TEXT,
        error      TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (run_id, url)
      );

      CREATE TABLE model_prices (
        api_origin TEXT NOT NULL,
        model_id   TEXT NOT NULL,
        micros     BIGINT NOT NULL,
        unit       TEXT NOT NULL CHECK (unit IN ('second', 'output')),
        note       TEXT,
        read_at    BIGINT NOT NULL,
        PRIMARY KEY (api_origin, model_id)
      );

      -- At most one live apply per workflow. No foreign key: the lock is taken before the run exists.
      CREATE TABLE locks (
        workflow_name TEXT PRIMARY KEY,
        run_id        TEXT NOT NULL,
        pid           INTEGER NOT NULL,
        hostname      TEXT NOT NULL,
        acquired_at   BIGINT NOT NULL,
        heartbeat_at  BIGINT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: "the fence of a submission across processes, the workers, account-wide request slots",
    // SPEC §10. claimed_by: the worker whose claim of the attempt committed first (the only
    // one that may submit it). workers: heartbeats, to tell a live claimant from a dead one
    // and for status. request_slots: requests in flight per account (API origin and a digest
    // of the token, never the token), counted under an advisory lock per account, so that
    // \`concurrency\` and \`limits\` hold across every worker.
    sql: `
      ALTER TABLE attempts ADD COLUMN claimed_by TEXT;
      -- The host whose process wrote the output file (a cluster's outputs folder is shared).
      ALTER TABLE outputs ADD COLUMN host TEXT;
      CREATE TABLE workers (
        name       TEXT PRIMARY KEY,
        host       TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        started_at BIGINT NOT NULL,
        seen_at    BIGINT NOT NULL,
        doing      TEXT NOT NULL DEFAULT ''
      );
      CREATE TABLE request_slots (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account     TEXT NOT NULL,
        model       TEXT NOT NULL,
        worker      TEXT NOT NULL,
        acquired_at BIGINT NOT NULL
      );
      CREATE INDEX request_slots_by_account ON request_slots (account, model);
    `,
  },
  {
    version: 3,
    name: "a run's budget, held in the state",
    // SPEC §9 across workers (§10), as SQLite's migration 10: the cap and where it stands,
    // each model's estimate and actual costs, one reservation per attempt. Every change
    // locks the run's row first (SELECT … FOR UPDATE), so the decisions of all workers of a
    // run are one after the other.
    sql: `
      CREATE TABLE run_budgets (
        run_id          TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
        max_micros      BIGINT NOT NULL,
        spent_micros    BIGINT NOT NULL DEFAULT 0,
        reserved_micros BIGINT NOT NULL DEFAULT 0,
        reached         BOOLEAN NOT NULL DEFAULT false,
        held            INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE budget_models (
        run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        model           TEXT NOT NULL,
        estimate_micros BIGINT,
        actual_micros   BIGINT NOT NULL DEFAULT 0,
        actual_count    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, model)
      );
      CREATE TABLE budget_reservations (
        run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        micros  BIGINT NOT NULL,
        state   TEXT NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
        PRIMARY KEY (run_id, address, attempt)
      );
    `,
  },
  {
    version: 4,
    name: "steps: the transaction that wrote each step last, for a follower's cheap re-read",
    // changed_xid: the id of the transaction that wrote the row last (a trigger keeps it, so
    // no write can forget it). A follower asks for the rows with changed_xid at or above the
    // oldest transaction still running when it last read (its snapshot's xmin): whatever
    // committed before then it saw, whatever commits later has an id at or above it.
    sql: `
      ALTER TABLE steps ADD COLUMN changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
      CREATE FUNCTION runflow_step_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.changed_xid := pg_current_xact_id();
        RETURN NEW;
      END
      $$;
      CREATE TRIGGER steps_changed BEFORE UPDATE ON steps
        FOR EACH ROW EXECUTE FUNCTION runflow_step_changed();
      CREATE INDEX steps_by_change ON steps (run_id, changed_xid);
    `,
  },
  {
    version: 5,
    name: "a request slot belongs to its step's request, not to the process that took it",
    // SPEC §10: a dead worker's requests may still run at the API. Its slots are kept while
    // their step's request may run (account-slots.ts): run_id and address name the step (a
    // step has one request at a time), held_until bounds how long (the slot's taking plus the
    // step's timeout). Rows without a step (taken by an older runflow) are freed as before.
    sql: `
      ALTER TABLE request_slots ADD COLUMN run_id TEXT;
      ALTER TABLE request_slots ADD COLUMN address TEXT;
      ALTER TABLE request_slots ADD COLUMN held_until BIGINT;
      CREATE INDEX request_slots_by_step ON request_slots (run_id, address);
    `,
  },
  {
    version: 6,
    name: "a request slot is taken in one round trip: runflow_take_slot",
    // account-slots.ts took a slot in seven round trips (BEGIN, the advisory lock, the step's
    // takeover, the dead workers' deletes, the counts, the insert, COMMIT), serialized per
    // account under the lock: ≈ 15 ms a take under load, a wave of 20 spread over 0.3 s. The
    // same statements, in the same order, under the same lock, now run in one call — the
    // lock is held from the function's start to the commit of the statement that calls it.
    // The caller passes the clock's readings (the store has no clock) and the caps. Returns
    // the slot's id, or refused = 'limit' / 'concurrency'. A volatile function takes a new
    // snapshot at each statement, so what it reads after the lock is what the last holder
    // committed. The notices of the deletes go out at the commit, as before.
    sql: `
      CREATE FUNCTION runflow_take_slot(
        p_account TEXT, p_model TEXT, p_worker TEXT, p_now BIGINT,
        p_live_since BIGINT, p_grace_before BIGINT,
        p_run_id TEXT, p_address TEXT, p_held_until BIGINT,
        p_concurrency INTEGER, p_limit INTEGER, p_channel TEXT,
        OUT slot_id BIGINT, OUT refused TEXT
      ) LANGUAGE plpgsql VOLATILE AS $$
      DECLARE
        v_freed INTEGER;
        v_total INTEGER;
        v_of_model INTEGER;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('runflow slots ' || p_account, 0));
        -- The step's own slot, left by a dead worker (or by this one): taken over first.
        IF p_run_id IS NOT NULL THEN
          UPDATE request_slots SET worker = p_worker WHERE id = (
            SELECT s.id FROM request_slots s
            WHERE s.account = p_account AND s.run_id = p_run_id AND s.address = p_address
              AND (s.worker = p_worker
                   OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.name = s.worker AND w.seen_at >= p_live_since))
            LIMIT 1)
          RETURNING id INTO slot_id;
          IF slot_id IS NOT NULL THEN
            RETURN;
          END IF;
        END IF;
        -- Dead workers' slots whose step runs no request, or past held_until, or past the
        -- takeover grace (an unknown attempt's and a left worker's kept): account-slots.ts.
        WITH freed AS (
          DELETE FROM request_slots s WHERE s.account = p_account
            AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.name = s.worker AND w.seen_at >= p_live_since)
            AND (s.run_id IS NULL OR s.held_until IS NULL OR s.held_until < p_now
                 OR NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = s.run_id AND a.address = s.address
                                AND a.state IN ('submitting', 'submitted', 'in_queue', 'in_progress', 'unknown')
                                AND a.attempt = (SELECT max(b.attempt) FROM attempts b
                                                 WHERE b.run_id = s.run_id AND b.address = s.address))
                 OR (COALESCE((SELECT max(w.seen_at) FROM workers w WHERE w.name = s.worker), p_now) < p_grace_before
                     AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = s.run_id AND a.address = s.address
                                     AND a.state = 'unknown'
                                     AND a.attempt = (SELECT max(b.attempt) FROM attempts b
                                                      WHERE b.run_id = s.run_id AND b.address = s.address))))
          RETURNING s.account, s.model
        )
        SELECT count(pg_notify(p_channel, json_build_array(freed.account, freed.model)::text))
          INTO v_freed FROM freed;
        SELECT count(*)::int, count(*) FILTER (WHERE s.model = p_model)::int
          INTO v_total, v_of_model
          FROM request_slots s WHERE s.account = p_account;
        IF p_limit IS NOT NULL AND v_of_model >= p_limit THEN
          refused := 'limit';
          RETURN;
        END IF;
        IF v_total >= p_concurrency THEN
          refused := 'concurrency';
          RETURN;
        END IF;
        INSERT INTO request_slots (account, model, worker, acquired_at, run_id, address, held_until)
          VALUES (p_account, p_model, p_worker, p_now, p_run_id, p_address, p_held_until)
          RETURNING id INTO slot_id;
      END
      $$;
    `,
  },
  {
    version: 7,
    name: "a step's ending is announced: runflow_step_ended",
    // The apply learnt that a worker's step ended from its next read of the run (every
    // 200 ms): a run's last step ended, on average, 0.1 s before its apply knew. The trigger
    // of migration 4 now also notifies runflow_step_ended with the run's id when a step
    // enters a terminal state (engine/states.ts TERMINAL_STATES); the notice leaves when the
    // write commits (and never when it rolls back), and the apply reads at once
    // (cluster/step-end-notices.ts). The reads stay the guarantee; a notice only says when.
    sql: `
      CREATE OR REPLACE FUNCTION runflow_step_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.changed_xid := pg_current_xact_id();
        IF NEW.state IS DISTINCT FROM OLD.state
           AND NEW.state IN ('succeeded', 'reused', 'failed', 'timed_out', 'cancelled', 'unknown', 'blocked', 'held') THEN
          PERFORM pg_notify('runflow_step_ended', NEW.run_id);
        END IF;
        RETURN NEW;
      END
      $$;
    `,
  },
  {
    version: 8,
    name: "a process's waiting requests take their slots in one round trip: runflow_take_slots",
    // A wave's 20 takes, one call of runflow_take_slot each, queued behind each other for the
    // account's advisory lock, each with a commit: ≈ 0.1 s on a busy 2-core machine. A
    // process now sends the takes asked for while its previous call was out as one call,
    // which runs runflow_take_slot for each, in the order given, in one transaction: the
    // same statements under the same lock (taken once more for each, which PostgreSQL counts
    // and releases at the commit), so the same caps — each take counts the rows the ones
    // before it inserted. One round trip and one durable commit for the lot. Row n of the
    // answer is the n-th take's (slot_id, or refused).
    sql: `
      CREATE FUNCTION runflow_take_slots(
        p_account TEXT, p_worker TEXT, p_now BIGINT, p_live_since BIGINT, p_grace_before BIGINT,
        p_channel TEXT, p_models TEXT[], p_run_ids TEXT[], p_addresses TEXT[],
        p_held_until BIGINT[], p_concurrency INTEGER[], p_limits INTEGER[]
      ) RETURNS TABLE (n INTEGER, slot_id BIGINT, refused TEXT) LANGUAGE plpgsql VOLATILE AS $$
      BEGIN
        FOR i IN 1 .. coalesce(array_length(p_models, 1), 0) LOOP
          RETURN QUERY SELECT i, t.slot_id, t.refused FROM runflow_take_slot(
            p_account, p_models[i], p_worker, p_now, p_live_since, p_grace_before,
            p_run_ids[i], p_addresses[i], p_held_until[i], p_concurrency[i], p_limits[i], p_channel) t;
        END LOOP;
      END
      $$;
    `,
  },
  {
    version: 9,
    name: "a refused take says when a dead worker's request awaits its takeover",
    // A dead worker's steps come back to the queue behind everything queued since, and every
    // live worker's places (`--concurrency`) can be held by deliveries waiting for a slot —
    // for the very slots the dead worker's requests still hold. The re-attaching deliveries
    // then waited for a place until the takeover grace freed those slots to new submissions
    // (the proof measured 9.5–19 s under load). A refused take now also says whether the
    // account holds such a slot — a dead worker's (not past the grace: the frees above ran
    // first) or one that left handing its step back, whose step's last attempt is open and
    // not `unknown` — as refused =
    // 'limit+takeover' / 'concurrency+takeover'; the waiting delivery then gives its place
    // back to the queue (cluster/account-slots.ts) so a re-attachment can be handed out.
    // The same function otherwise, statement for statement (migration 6).
    sql: `
      CREATE OR REPLACE FUNCTION runflow_take_slot(
        p_account TEXT, p_model TEXT, p_worker TEXT, p_now BIGINT,
        p_live_since BIGINT, p_grace_before BIGINT,
        p_run_id TEXT, p_address TEXT, p_held_until BIGINT,
        p_concurrency INTEGER, p_limit INTEGER, p_channel TEXT,
        OUT slot_id BIGINT, OUT refused TEXT
      ) LANGUAGE plpgsql VOLATILE AS $$
      DECLARE
        v_freed INTEGER;
        v_total INTEGER;
        v_of_model INTEGER;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('runflow slots ' || p_account, 0));
        IF p_run_id IS NOT NULL THEN
          UPDATE request_slots SET worker = p_worker WHERE id = (
            SELECT s.id FROM request_slots s
            WHERE s.account = p_account AND s.run_id = p_run_id AND s.address = p_address
              AND (s.worker = p_worker
                   OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.name = s.worker AND w.seen_at >= p_live_since))
            LIMIT 1)
          RETURNING id INTO slot_id;
          IF slot_id IS NOT NULL THEN
            RETURN;
          END IF;
        END IF;
        WITH freed AS (
          DELETE FROM request_slots s WHERE s.account = p_account
            AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.name = s.worker AND w.seen_at >= p_live_since)
            AND (s.run_id IS NULL OR s.held_until IS NULL OR s.held_until < p_now
                 OR NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = s.run_id AND a.address = s.address
                                AND a.state IN ('submitting', 'submitted', 'in_queue', 'in_progress', 'unknown')
                                AND a.attempt = (SELECT max(b.attempt) FROM attempts b
                                                 WHERE b.run_id = s.run_id AND b.address = s.address))
                 OR (COALESCE((SELECT max(w.seen_at) FROM workers w WHERE w.name = s.worker), p_now) < p_grace_before
                     AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = s.run_id AND a.address = s.address
                                     AND a.state = 'unknown'
                                     AND a.attempt = (SELECT max(b.attempt) FROM attempts b
                                                      WHERE b.run_id = s.run_id AND b.address = s.address))))
          RETURNING s.account, s.model
        )
        SELECT count(pg_notify(p_channel, json_build_array(freed.account, freed.model)::text))
          INTO v_freed FROM freed;
        SELECT count(*)::int, count(*) FILTER (WHERE s.model = p_model)::int
          INTO v_total, v_of_model
          FROM request_slots s WHERE s.account = p_account;
        IF p_limit IS NOT NULL AND v_of_model >= p_limit THEN
          refused := 'limit';
        ELSIF v_total >= p_concurrency THEN
          refused := 'concurrency';
        ELSE
          INSERT INTO request_slots (account, model, worker, acquired_at, run_id, address, held_until)
            VALUES (p_account, p_model, p_worker, p_now, p_run_id, p_address, p_held_until)
            RETURNING id INTO slot_id;
          RETURN;
        END IF;
        -- Refused: is the request of a worker dead (within the grace: the rows past it were
        -- freed above) or gone (it left, handing its step back), its attempt open and not
        -- unknown, waiting for the delivery that re-attaches to it?
        IF EXISTS (
          SELECT 1 FROM request_slots s
          WHERE s.account = p_account AND s.run_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.name = s.worker AND w.seen_at >= p_live_since)
            AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = s.run_id AND a.address = s.address
                            AND a.state = 'unknown'
                            AND a.attempt = (SELECT max(b.attempt) FROM attempts b
                                             WHERE b.run_id = s.run_id AND b.address = s.address))
        ) THEN
          refused := refused || '+takeover';
        END IF;
      END
      $$;
    `,
  },
];

export const LATEST_POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.reduce(
  (latest, m) => Math.max(latest, m.version),
  0,
);

/**
 * The advisory lock key that migrations run under: any 64-bit number of our own, the same
 * in every runflow (0x72756e666c6f77: "runflow" in ASCII).
 */
export const MIGRATION_LOCK_KEY = "32217264370249591";

const CREATE_VERSIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS runflow_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
  )`;

/** The schema version of the database, or 0 when runflow never wrote to it. */
export async function postgresSchemaVersion(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ present: boolean }>(
    "SELECT to_regclass('runflow_migrations') IS NOT NULL AS present",
  );
  if (!rows[0]?.present) return 0;
  const version = await client.query<{ version: number | null }>(
    "SELECT max(version) AS version FROM runflow_migrations",
  );
  return version.rows[0]?.version ?? 0;
}

/**
 * Brings the database to the latest schema in one transaction, under an advisory lock held
 * to its end: two processes opening a fresh database at once queue on the lock, and the
 * second finds the work done. DDL is transactional in PostgreSQL, so a migration that fails
 * leaves nothing half made.
 */
export async function migratePostgres(
  client: pg.ClientBase,
  location: string,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
): Promise<void> {
  const known = migrations.reduce((latest, m) => Math.max(latest, m.version), 0);
  await client.query("BEGIN");
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await client.query(CREATE_VERSIONS_TABLE);
    const found = await postgresSchemaVersion(client);
    if (found > known) throw newerSchemaError(location, found, known);
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (migration.version <= found) continue;
      await client.query(migration.sql);
      await client.query("INSERT INTO runflow_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
