/**
 * The run a `[run]` argument names (status, report, retry, cancel). A module of its own so
 * that reading a run (`runflow status`) loads the store alone, not the engine that runs one.
 */
import { UsageError } from "../errors.js";
import type { StateStore } from "../store/port.js";
import type { RunRecord } from "../store/types.js";

/** The run a `[run]` argument names, or the latest; a clear error when there is none. */
export async function findRun(
  store: StateStore,
  runId: string | undefined,
  statePath: string,
): Promise<RunRecord> {
  const run = runId === undefined ? await store.runs.latest() : await store.runs.get(runId);
  if (run) return run;
  if (runId === undefined) {
    throw new UsageError(`no runs in ${statePath} yet`, { hint: "run `runflow apply FILE` first" });
  }
  const recent = (await store.runs.list({ limit: 3 })).map((r) => r.id);
  throw new UsageError(`no run ${runId} in ${statePath}`, {
    hint:
      recent.length > 0
        ? `recent runs: ${recent.join(", ")} (\`runflow runs\` lists them)`
        : "`runflow runs` lists the runs",
  });
}
