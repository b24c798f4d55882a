/**
 * The run a `[run]` argument names (status, report, retry, cancel). A module of its own so
 * that reading a run (`runflow status`) loads the store alone, not the engine that runs one.
 */
import { UsageError } from "../errors.js";
import type { RunRecord, StateStore } from "../store/types.js";

/** The run a `[run]` argument names, or the latest; a clear error when there is none. */
export function findRun(store: StateStore, runId: string | undefined, statePath: string): RunRecord {
  const run = runId === undefined ? store.latestRun() : store.getRun(runId);
  if (run) return run;
  if (runId === undefined) {
    throw new UsageError(`no runs in ${statePath} yet`, { hint: "run `runflow apply FILE` first" });
  }
  const recent = store.listRuns({ limit: 3 }).map((r) => r.id);
  throw new UsageError(`no run ${runId} in ${statePath}`, {
    hint:
      recent.length > 0
        ? `recent runs: ${recent.join(", ")} (\`runflow runs\` lists them)`
        : "`runflow runs` lists the runs",
  });
}
