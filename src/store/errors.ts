import { ExitCode, RunflowError, type RunflowErrorOptions } from "../errors.js";

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
