export type * from "./types.js";
export type * from "./port.js";
export { AttemptState, OPEN_ATTEMPT_STATES, STORED_STEP_STATES } from "./types.js";
export { openSqliteStore, SqliteStore, type SqliteStoreOptions } from "./sqlite.js";
export { openSqliteStateStore, SqliteStateStore, sqliteStateStoreOf } from "./sqlite-state-store.js";
export { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from "./migrations.js";
export { explainSqliteError, StateBusyError, StateStoreError } from "./errors.js";
export { decideLock, isProcessAlive, type LockDecision } from "./lock.js";
export { REDACTED, tokensFromEnvironment } from "./redact.js";
