import { statSync } from "node:fs";
import { ExitCode, isRunflowError, RunflowError, type RunflowErrorOptions } from "../errors.js";

/** The state database cannot be used as it is: nothing was submitted. */
export class StateStoreError extends RunflowError {
  readonly path: string;

  constructor(code: string, path: string, message: string, options?: RunflowErrorOptions) {
    super(code, ExitCode.invalid, message, options);
    this.path = path;
  }
}

export function newerSchemaError(path: string, found: number, known: number): StateStoreError {
  return new StateStoreError(
    "state_schema_newer",
    path,
    `${path} was written by a newer runflow (schema ${found}, this one knows ${known}): upgrade runflow or use another --state`,
  );
}

export function notADatabaseError(path: string, cause: unknown): StateStoreError {
  return new StateStoreError("state_not_a_database", path, `${path} is not a runflow state database`, {
    hint: "point --state (or RUNFLOW_STATE) at a runflow database, or at a path that does not exist yet",
    cause,
  });
}

export function cannotOpenError(path: string, cause: unknown): StateStoreError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new StateStoreError("state_unopenable", path, `cannot open the state database ${path}: ${reason}`, {
    hint: "check that the path is a file you can read and write, or choose another --state",
    cause,
  });
}

/** The database is damaged: SQLite found pages it cannot read. */
export function damagedDatabaseError(path: string, cause: unknown): StateStoreError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new StateStoreError("state_damaged", path, `the state database ${path} is damaged (${reason})`, {
    hint: `runflow cannot use it: move it aside and run again to start a new one (\`sqlite3 ${path} .recover\` may save its rows), or point --state at another path`,
    cause,
  });
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Another process holds the database (a write transaction, `BEGIN EXCLUSIVE`) for longer than
 * the busy timeout. Nothing is wrong with the file; the command can simply be run again.
 */
export class StateBusyError extends RunflowError {
  readonly path: string;

  constructor(path: string, cause: unknown) {
    super(
      "state_busy",
      ExitCode.lockHeld,
      `the state database ${path} is locked by another process, which did not let go of it in time`,
      {
        hint: "another runflow command, or a program with the file open (a database browser, a backup), is writing to it; run the command again once it is done: retrying is safe",
        cause,
      },
    );
    this.path = path;
  }
}

/**
 * What an error SQLite raised while using the database at `path` means to the user: a busy
 * database can be retried; a damaged one, a file that is not a database, a folder or an
 * unwritable path cannot be used (exit 2). Any other error is returned as it is.
 */
export function explainSqliteError(path: string, error: unknown): Error {
  if (isRunflowError(error)) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) {
    return error instanceof Error ? error : new Error(String(error));
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
    return new StateBusyError(path, error);
  if (code === "SQLITE_NOTADB") return notADatabaseError(path, error);
  if (code.startsWith("SQLITE_CORRUPT")) return damagedDatabaseError(path, error);
  if (isFolder(path)) {
    return new StateStoreError(
      "state_is_folder",
      path,
      `the state database ${path} is a folder, not a file`,
      {
        hint: `point --state (or RUNFLOW_STATE) at a file, e.g. ${path.replace(/\/+$/, "")}/runflow.db`,
        cause: error,
      },
    );
  }
  return cannotOpenError(path, error);
}

export function missingStateError(path: string): StateStoreError {
  return new StateStoreError("state_missing", path, `no state database at ${path}: nothing has run yet`, {
    hint: "run `runflow apply FILE` first, or point --state at an existing database",
  });
}

/** A group of writes could not be committed (disk full, I/O error): the run cannot go on safely. */
export function commitFailedError(path: string, cause: unknown): RunflowError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new RunflowError(
    "state_commit_failed",
    ExitCode.stepsFailed,
    `could not commit to the state database ${path}: ${reason}; the run stopped, and its last changes are lost`,
    {
      hint: "fix the disk (space, permissions), then run `runflow apply` again: it re-attaches to every request whose id was recorded",
      cause,
    },
  );
}
