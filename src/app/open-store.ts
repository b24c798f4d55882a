/**
 * The state store the composition root builds, chosen by where it is (store/location.ts):
 * a file path is the SQLite database there (store/sqlite-state-store.ts); a `postgres://`
 * URL is the PostgreSQL database there (store/postgres-state-store.ts). A module of its own
 * so that a command that only reads runs (`status`, `runs`, `report`) loads the store
 * alone, not the engine (src/app/index.ts); and the PostgreSQL adapter (with `pg`) is
 * imported only when a URL asks for it, so SQLite users never load it. The SQLite adapter
 * (with better-sqlite3) is imported when the store opens too: apply opens it while its first
 * requests are on their way, so their start does not wait for it (docs/decisions.md "Start-up").
 */
import { isPostgresLocation } from "../store/location.js";
import type { StateStoreOpener } from "../store/port.js";

/** Opens the state store at `location`: a PostgreSQL URL, else a SQLite file path. */
export const openStateStore: StateStoreOpener = async (location, options) => {
  if (isPostgresLocation(location)) {
    const { openPostgresStateStore } = await import("../store/postgres-state-store.js");
    return openPostgresStateStore(location, options);
  }
  const { openSqliteStateStore } = await import("../store/sqlite-state-store.js");
  return openSqliteStateStore(location, options);
};
