import type { LockHolder, LockRequest } from "./types.js";

/** What to do with a workflow's lock, given who holds it now. Pure: the store applies it. */
export type LockDecision =
  | { action: "take" }
  | { action: "refresh" }
  | { action: "take_over"; from: LockHolder }
  | { action: "refuse"; holder: LockHolder };

export interface LockJudgement {
  now: number;
  staleAfterMs: number;
  isProcessAlive: (pid: number) => boolean;
}

/**
 * A holder is gone when its heartbeat is older than `staleAfterMs`, or when it runs on this
 * host and its pid no longer exists. A pid that exists may have been reused by another
 * process: then the lock waits for the heartbeat to go stale, which errs on the safe side.
 */
export function decideLock(
  current: LockHolder | undefined,
  request: LockRequest,
  { now, staleAfterMs, isProcessAlive }: LockJudgement,
): LockDecision {
  if (!current) return { action: "take" };
  if (current.runId === request.runId) return { action: "refresh" };
  const heartbeatStale = now - current.heartbeatAt > staleAfterMs;
  const deadOnThisHost = current.hostname === request.hostname && !isProcessAlive(current.pid);
  if (heartbeatStale || deadOnThisHost) return { action: "take_over", from: current };
  return { action: "refuse", holder: current };
}

/** `process.kill(pid, 0)` probes without signalling: ESRCH = no such process; EPERM = exists, not ours. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
