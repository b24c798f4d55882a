/**
 * The small error taxonomy of runflow. Every error a user can see is a RunflowError with a
 * stable `code` and the process `exitCode` it maps to (SPEC §2). Only the CLI entry turns
 * an error into an exit; library callers get the typed error.
 */

export const ExitCode = {
  ok: 0,
  stepsFailed: 1,
  invalid: 2,
  lockHeld: 3,
  auth: 4,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface RunflowErrorOptions {
  /** What the user can do about it; printed on its own line after the message. */
  hint?: string | undefined;
  cause?: unknown;
}

export class RunflowError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(code: string, exitCode: ExitCode, message: string, options: RunflowErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = options.hint;
  }
}

/** Bad command line or option value: nothing was submitted. */
export class UsageError extends RunflowError {
  constructor(message: string, options?: RunflowErrorOptions) {
    super("usage", ExitCode.invalid, message, options);
  }
}

/** A location in a workflow (or items) file, 1-based. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** One problem found in a workflow: what, where, and (optionally) what to do. */
export interface Diagnostic {
  message: string;
  location?: SourceLocation | undefined;
  /** Dotted path inside the document, e.g. `jobs.teaser.steps[1].input.ratio`. */
  path?: string | undefined;
  hint?: string | undefined;
}

export function formatLocation(location: SourceLocation | undefined): string {
  return location ? `${location.file}:${location.line}:${location.column}` : "";
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = formatLocation(d.location);
  const head = where ? `${where}: ${d.message}` : d.message;
  return d.hint ? `${head}\n  hint: ${d.hint}` : head;
}

/** The workflow (or an input) is invalid; carries every problem found, not just the first. */
export class WorkflowInvalidError extends RunflowError {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[], options?: RunflowErrorOptions) {
    const count = diagnostics.length;
    const first = diagnostics.map(formatDiagnostic).join("\n");
    super(
      "workflow_invalid",
      ExitCode.invalid,
      count === 1 ? first : `${count} problems:\n${first}`,
      options,
    );
    this.diagnostics = diagnostics;
  }
}

/** Another live apply holds this workflow's lock. */
export class LockHeldError extends RunflowError {
  constructor(message: string, options?: RunflowErrorOptions) {
    super("lock_held", ExitCode.lockHeld, message, options);
  }
}

/** The API refused the token (401/403): nothing more can succeed this run. */
export class AuthError extends RunflowError {
  constructor(message: string, options?: RunflowErrorOptions) {
    super("auth", ExitCode.auth, message, options);
  }
}

/** SIGINT/SIGTERM: state is saved, apply again resumes. */
export class InterruptedError extends RunflowError {
  constructor(message = "interrupted: state is saved; run the same command again to resume") {
    super("interrupted", ExitCode.interrupted, message);
  }
}

export function isRunflowError(error: unknown): error is RunflowError {
  return error instanceof RunflowError;
}
