import path from "node:path";

/**
 * Where the state database is unless `--state` or RUNFLOW_STATE says otherwise. Its own
 * module: every command reads it, and most of them need nothing else of the engine.
 */
export const DEFAULT_STATE_PATH = path.join("state", "runflow.db");
