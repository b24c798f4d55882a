/**
 * The commands and paths runflow prints back to the user (`to retry: runflow retry …`,
 * outputs relative to their folder), written so they work as they are when pasted. Apart
 * from the run views so that `status` and `report` print them without loading those.
 */
import path from "node:path";
import { describeQueueLocation } from "../cluster/queue-location.js";
import { describePostgresLocation, isPostgresLocation } from "../store/location.js";
import { DEFAULT_STATE_PATH, type GlobalOptions } from "./context.js";

/** A word as a shell reads it back: bare when safe, single-quoted otherwise. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * `--state PATH` when it is not the default, so printed commands work as they are; a
 * PostgreSQL URL's password is never printed (PGPASSWORD or ~/.pgpass keep it out of the URL).
 */
export function stateArgument(globals: GlobalOptions): string {
  if (globals.state === DEFAULT_STATE_PATH) return "";
  const shown = isPostgresLocation(globals.state) ? describePostgresLocation(globals.state) : globals.state;
  return ` --state ${shellWord(shown)}`;
}

/**
 * `--queue URL` when the run's queues were named by that flag (not by RUNFLOW_QUEUE, which
 * the pasted command finds in the same environment); without a password, as `--state`.
 */
export function queueArgument(queue: string | undefined): string {
  return queue === undefined ? "" : ` --queue ${shellWord(describeQueueLocation(queue))}`;
}

/**
 * The command that retries `runId`, exactly as it works from here: with `--state` when not
 * the default, `--queue` when the run's queues were given by it, and `--emulator` for a run
 * on the embedded emulator (no token there).
 */
export function retryCommand(
  runId: string,
  globals: GlobalOptions,
  how: { emulator?: boolean | undefined; queue?: string | undefined } = {},
): string {
  return `runflow retry ${runId}${stateArgument(globals)}${queueArgument(how.queue)}${how.emulator === true ? " --emulator" : ""}`;
}

/** Where a path is, as the user reads it: relative to their folder when inside it. */
export function displayPath(absolute: string, cwd: string = process.cwd()): string {
  const relative = path.relative(cwd, absolute);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : absolute;
}
