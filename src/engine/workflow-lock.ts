/**
 * One live apply per workflow (SPEC §5): the lock is taken before the run starts (exit 3 when
 * another live apply holds it, or wait for it with `--wait`; a dead holder's lock is taken
 * over), kept alive with a heartbeat while the run goes, and released at the end. The same
 * heartbeat notices a `runflow cancel` of the run.
 */
import os from "node:os";
import { InterruptedError, LockHeldError } from "../errors.js";
import type { StateStore } from "../store/port.js";
import type { LockHolder } from "../store/types.js";
import type { Clock } from "../util/clock.js";
import { formatDuration } from "../util/duration.js";
import type { RunControl } from "./run-control.js";

export interface LockTiming {
  /** How often the holder proves it is alive (and checks for a cancel request). Default 1 s. */
  heartbeatMs: number;
  /** A holder silent this long is presumed dead, even on another host. Default 30 s. */
  staleAfterMs: number;
  /** How often `--wait` tries again. Default 1 s. */
  waitPollMs: number;
}

export const DEFAULT_LOCK_TIMING: LockTiming = {
  heartbeatMs: 1_000,
  staleAfterMs: 30_000,
  waitPollMs: 1_000,
};

function describeHolder(holder: LockHolder, now: number): string {
  return `run ${holder.runId} (pid ${holder.pid} on ${holder.hostname}, started ${formatDuration(now - holder.acquiredAt)} ago)`;
}

export interface AcquireOptions {
  workflowName: string;
  runId: string;
  wait: boolean;
  timing: LockTiming;
  store: StateStore;
  clock: Clock;
  control: RunControl;
  /** Told when the lock of a dead holder is taken over, or when waiting starts. */
  notice: (message: string) => void;
}

/** Takes the workflow's lock, waiting for it with `wait`; throws LockHeldError (exit 3) otherwise. */
export async function acquireWorkflowLock(options: AcquireOptions): Promise<void> {
  const { store, clock, workflowName, runId } = options;
  let announcedWait = false;
  for (;;) {
    const now = clock.now();
    const result = await store.locks.acquire(
      workflowName,
      { runId, pid: process.pid, hostname: os.hostname() },
      { now, staleAfterMs: options.timing.staleAfterMs },
    );
    if (result.acquired) {
      if (result.tookOverFrom) {
        options.notice(
          `took over the lock of workflow ${workflowName} from ${describeHolder(result.tookOverFrom, now)}, which is no longer alive`,
        );
      }
      return;
    }
    if (!options.wait) {
      throw new LockHeldError(
        `another apply of workflow ${workflowName} is running: ${describeHolder(result.holder, now)}`,
        { hint: "wait for it to finish, pass --wait to wait for it, or `runflow cancel` it" },
      );
    }
    if (!announcedWait) {
      options.notice(`waiting for the apply of ${describeHolder(result.holder, now)} to finish`);
      announcedWait = true;
    }
    try {
      await clock.sleep(options.timing.waitPollMs, options.control.submitSignal);
    } catch {
      throw new InterruptedError("interrupted while waiting for the workflow's lock; nothing was submitted");
    }
  }
}

/**
 * Beats the heartbeat until stopped. A lost lock (another apply took it over, believing this
 * one dead) stops the run as an interrupt: two applies must never submit side by side.
 */
export function keepLockAlive(options: AcquireOptions & { onLost: () => void }): { stop(): void } {
  const { store, clock, workflowName, runId, control } = options;
  const stopped = new AbortController();
  const beat = async (): Promise<"held" | "lost" | "failed"> => {
    try {
      if (!(await store.locks.heartbeat(workflowName, runId, clock.now()))) return "lost";
      const run = await store.runs.get(runId);
      if (run?.cancelRequestedAt !== undefined && !control.stopped) control.stop("cancelled");
      return "held";
    } catch {
      // Another process kept the database busy past the busy timeout (or a write failed):
      // the next beat tries again. Should the beats fail long enough for another apply to
      // take the lock over, the first one that gets through finds it lost.
      return "failed";
    }
  };
  const loop = async () => {
    for (;;) {
      await clock.sleep(options.timing.heartbeatMs, stopped.signal);
      if ((await beat()) === "lost") {
        options.onLost();
        return;
      }
    }
  };
  // The loop ends by throwing when stop() aborts its sleep.
  loop().catch(() => undefined);
  return { stop: () => stopped.abort() };
}
