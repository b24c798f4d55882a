/**
 * A use case's state store, from open to close: where `--state` points (relative to the use
 * case's folder, unless it is a PostgreSQL URL: store/location.ts), opened with the tokens
 * to redact, and closed so that a failure to close never hides the error that ended the use
 * case.
 */
import type { StateStore, StateStoreOpener } from "../store/port.js";
import { resolveStateLocation } from "../store/location.js";
import { tokensFromEnvironment } from "../store/redact.js";
import { DEFAULT_STATE_PATH } from "./state-path.js";
import type { UseCasePlace } from "./use-case-ports.js";

/** Where the state store is: `statePath` (default state/runflow.db) against `cwd`, or the PostgreSQL URL given. */
export function stateLocation(statePath: string | undefined, cwd: string): string {
  return resolveStateLocation(cwd, statePath ?? DEFAULT_STATE_PATH);
}

/** Opens the state store of a use case (`--state`, relative to `cwd`). */
export async function openStoreAt(
  open: StateStoreOpener,
  statePath: string | undefined,
  place: UseCasePlace,
): Promise<{ store: StateStore; path: string }> {
  const location = stateLocation(statePath, place.cwd);
  return { store: await open(location, { secrets: tokensFromEnvironment(place.env) }), path: location };
}

/**
 * Closes a use case's store (making its writes durable). When the use case failed, a close
 * that fails too (the same broken disk) does not hide the first error, which says more.
 */
export async function closeStore(store: StateStore, failed: boolean): Promise<void> {
  if (failed) await store.close().catch(() => undefined);
  else await store.close();
}
