/**
 * A vitest globalSetup that starts one PostgreSQL server for the whole run (or the project
 * that names it) and provides its URL as `postgresUrl`; `databasePerTest()` then gives each
 * test a fresh database on it instead of starting a server per file. Tests that crash their
 * server start their own (`startPostgres()`).
 *
 *   // vitest.config.ts, for the project of the PostgreSQL tests
 *   globalSetup: ["test/helpers/postgres-global-setup.ts"]
 */
import type { TestProject } from "vitest/node";
import { postgresUnavailable, startPostgres } from "./postgres.js";

export default async function setup(project: TestProject): Promise<() => void> {
  // Where no server can start, provide nothing: the tests skip or fail with the reason.
  if (postgresUnavailable() !== undefined) return () => {};
  const server = await startPostgres({ settings: { max_connections: "300" } });
  project.provide("postgresUrl", server.url);
  return () => server.stop();
}
