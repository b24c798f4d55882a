/**
 * A run recorded as `running` may have died (killed, machine rebooted): the database cannot
 * know. On the host it ran on, whether its process is still there tells; elsewhere it is
 * left as recorded.
 */
import os from "node:os";
import { isProcessAlive } from "../store/lock.js";
import type { RunRecord } from "../store/types.js";

export function shownStatus(
  run: Pick<RunRecord, "status" | "pid" | "hostname">,
  probe: { hostname: string; isProcessAlive: (pid: number) => boolean } = {
    hostname: os.hostname(),
    isProcessAlive,
  },
): string {
  if (run.status !== "running") return run.status;
  const gone = run.hostname === probe.hostname && !probe.isProcessAlive(run.pid);
  return gone ? "died (apply again to resume)" : "running";
}
