/**
 * A real PostgreSQL server that the tests start themselves: Debian's PostgreSQL 15
 * (`postgresql`, installed by .ci/run), never one that happens to be running.
 *
 * The server itself (a fresh cluster copied from an initdb'd template, on loopback, fsync on,
 * run as the `postgres` user through `runuser` when the tests run as root, stopped and removed
 * by stop() or at exit) is started by postgres-server.js, plain JavaScript shared with the
 * benchmarks (bench/cluster.js); this module adds vitest's parts. A `pg_ctl stop -m
 * immediate` (crash()) or a SIGKILL ends the server without flushing anything; what a commit
 * acknowledged is in the WAL and comes back by crash recovery. Each test gets its own
 * database (`createDatabase`).
 *
 * A whole run can share one server: `test/helpers/postgres-global-setup.ts` is a vitest
 * globalSetup that starts one and provides its URL; `databasePerTest()` uses that server when
 * provided and otherwise starts one for the test file.
 */
import pg from "pg";
import { afterAll, beforeAll, beforeEach, inject } from "vitest";
import {
  createDatabase,
  postgresUnavailable,
  type PostgresServer,
  startPostgres,
  type StartPostgresOptions,
} from "./postgres-server.js";

export {
  createDatabase,
  POSTGRES_BIN,
  POSTGRES_USER,
  postgresUnavailable,
  type PostgresServer,
  startPostgres,
  type StartPostgresOptions,
} from "./postgres-server.js";

/** True when the PostgreSQL tests cannot run here and may be skipped (never under CI=true). */
export function skipWithoutPostgres(testName: string): boolean {
  const reason = postgresUnavailable();
  const skip = reason !== undefined && !process.env.CI;
  if (skip) console.warn(`${testName}: skipped, ${reason}`);
  return skip;
}

/**
 * A fresh database for every test of the file: on the run's shared server when the
 * globalSetup provided one, else on a server started for this file (stopped after it).
 * Read `.url` inside a test or a beforeEach.
 */
export function databasePerTest(options: StartPostgresOptions = {}): { readonly url: string } {
  let adminUrl: string | undefined;
  let own: PostgresServer | undefined;
  let current: string | undefined;
  beforeAll(async () => {
    adminUrl = inject("postgresUrl");
    if (adminUrl === undefined) {
      own = await startPostgres(options);
      adminUrl = own.url;
    }
  });
  afterAll(() => own?.stop());
  beforeEach(async () => {
    current = await createDatabase(adminUrl!);
  });
  return {
    get url() {
      if (current === undefined) throw new Error("databasePerTest(): read .url inside a test");
      return current;
    },
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the run's shared server (test/helpers/postgres-global-setup.ts), when started. */
    postgresUrl?: string;
  }
}

/** The rows `sql` reads from the database at `url`, on a connection of its own. */
export async function query<Row extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query<Row>(sql, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A barrier inside the database: `waitSql` (PL/pgSQL statements, for a trigger's body) waits
 * while the test holds advisory lock `key` on a session of its own; `release()` lets every
 * such wait go on.
 */
export async function advisoryBarrier(
  url: string,
  key: number,
): Promise<{ waitSql: string; release(): Promise<void> }> {
  const holder = new pg.Client({ connectionString: url });
  holder.on("error", () => undefined);
  await holder.connect();
  await holder.query("SELECT pg_advisory_lock($1)", [key]);
  return {
    waitSql: `PERFORM pg_advisory_lock(${key}); PERFORM pg_advisory_unlock(${key});`,
    release: () => holder.end(),
  };
}
