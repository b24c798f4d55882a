/**
 * A run recorded as `running` may have died (killed, machine rebooted): the database cannot
 * know. On the host it ran on, whether its process is still there tells; elsewhere it is
 * left as recorded.
 */
import os from "node:os";
import { isEmulatorOrigin } from "../api/origin.js";
import { isProcessAlive } from "../store/lock.js";
import type { RunRecord } from "../store/types.js";

/** Of a `running` run: its process is `alive` or `gone` on this host, or it ran on `another-host`. */
export type RunProcess = "alive" | "gone" | "another-host";

type LivenessProbe = { hostname: string; isProcessAlive: (pid: number) => boolean };

const THIS_HOST: LivenessProbe = { hostname: os.hostname(), isProcessAlive };

/** undefined for a run that is not `running`. */
export function runProcess(
  run: Pick<RunRecord, "status" | "pid" | "hostname">,
  probe: LivenessProbe = THIS_HOST,
): RunProcess | undefined {
  if (run.status !== "running") return undefined;
  if (run.hostname !== probe.hostname) return "another-host";
  return probe.isProcessAlive(run.pid) ? "alive" : "gone";
}

/** `succeeded`, `died (apply again to resume)`, `interrupted; finished by run …`. */
export function shownStatus(
  run: Pick<RunRecord, "status" | "pid" | "hostname" | "finishedByRun">,
  probe: LivenessProbe = THIS_HOST,
): string {
  const gone = runProcess(run, probe) === "gone";
  if (run.finishedByRun !== undefined)
    return `${gone ? "died" : run.status}; finished by run ${run.finishedByRun}`;
  return gone ? "died (apply again to resume)" : run.status;
}

/**
 * A run as `--json` writes it: with `process` when it is recorded as running, and whether
 * it ran against an emulator (`apiOrigin` says which API; `finishedByRun` which later run
 * finished what it left).
 */
export function runJson(run: RunRecord): RunRecord & { process?: RunProcess; emulator: boolean } {
  const liveness = runProcess(run);
  const shown = { ...run, emulator: isEmulatorOrigin(run.apiOrigin) };
  return liveness === undefined ? shown : { ...shown, process: liveness };
}
