/**
 * `--json` for apply (SPEC §6): one JSON object per line on stdout, each with an `"event"`
 * field — `run_started` first, `step` for every state change, `notice`, `run_finished` last.
 * Nothing else is written to stdout. `at` is milliseconds since the epoch. Also, in between
 * (README "NDJSON events" lists the fields):
 * - `step_wait`: why a step is not moving (`reason`: `limit`, `concurrency`, `backoff`), or,
 *   without `reason`, that it moves again;
 * - `api_unreachable` (once per outage: `since`, `failures`, `error`) and `api_recovered`;
 * - `typical_duration`: a model's learned request duration (`model`, `typicalMs`).
 * A consumer should skip event kinds it does not know: more may come.
 */
import type { RunEvent } from "../engine/events.js";

export function ndjsonLine(event: RunEvent): string {
  // undefined fields are left out by JSON.stringify: every line carries only what is known.
  return JSON.stringify(event);
}

export function ndjsonRenderer(write: (line: string) => void): (event: RunEvent) => void {
  return (event) => write(ndjsonLine(event));
}
