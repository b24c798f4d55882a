/**
 * Where a state store is: a `postgres://` (or `postgresql://`) URL names a PostgreSQL
 * database; anything else is the path of a SQLite file. `--state` and RUNFLOW_STATE take
 * either; only a path is resolved against the working folder.
 */
import path from "node:path";

/** Whether `location` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresLocation(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** `given` as the store openers take it: a URL as it is, a path made absolute against `cwd`. */
export function resolveStateLocation(cwd: string, given: string): string {
  return isPostgresLocation(given) ? given : path.resolve(cwd, given);
}

/** A PostgreSQL URL without its password: what messages and printed commands may show. */
export function describePostgresLocation(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "the PostgreSQL state (its URL does not parse)";
  }
}
