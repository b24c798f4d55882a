/**
 * The state store the composition root builds, chosen by where it is: a file path is the
 * SQLite database there (store/sqlite-state-store.ts); a `postgres://` URL will be the
 * PostgreSQL adapter (the next issue: store/postgres-state-store.ts), refused clearly until
 * then. A module of its own so that a command that only reads runs (`status`, `runs`,
 * `report`) loads the store alone, not the engine (src/app/index.ts).
 */
import { UsageError } from "../errors.js";
import type { StateStoreOpener } from "../store/port.js";
import { openSqliteStateStore } from "../store/sqlite-state-store.js";

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** The location without what may be a password (`postgres://user:secret@host/db` → `postgres://…@host/db`). */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, "$1…@");
}

/** Opens the state store at `location`: a SQLite file path, or (not yet) a PostgreSQL URL. */
export const openStateStore: StateStoreOpener = async (location, options) => {
  if (POSTGRES_URL.test(location)) {
    throw new UsageError(
      `a PostgreSQL state store (${withoutCredentials(location)}) is not supported yet by this version of runflow`,
      { hint: "pass a file path to --state (default state/runflow.db)" },
    );
  }
  return openSqliteStateStore(location, options);
};
