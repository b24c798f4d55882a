/**
 * The queues of a cluster (SPEC §10): BullMQ 6, on PostgreSQL (by default the state's own
 * database) or Redis, chosen by URL (queue-backend.ts). One queue for model steps, one for
 * run steps (local programs, capped by each worker's CPUs only); a job is a step of a run,
 * `runId + address`, never a closure. See docs/decisions.md "Several machines".
 */

export const MODEL_STEPS_QUEUE = "runflow-model-steps";
export const RUN_STEPS_QUEUE = "runflow-run-steps";

/** What a job carries: which step of which run. */
export interface StepJob {
  runId: string;
  address: string;
}

/**
 * A dead worker's steps move within 10 s: its lock lives 3 s unrenewed (renewed every 1.5 s),
 * a stalled check runs every second, so a job moves at most ≈ 4 s after the death, on either
 * backend (test/cluster-proof.test.ts measures the takeovers; 4 s and 2 s left the slowest at
 * 5.7–19 s on a loaded machine, docs/decisions.md "A dead worker's steps, handed out"). A
 * stalled step is not a failed one — runflow's fence decides what a redelivery may do — so it
 * is never failed for stalling.
 */
export const STALLED_TUNING = { lockDuration: 3_000, stalledInterval: 1_000, maxStalledCount: 1_000_000 };

/** The job id of a step: adding the same step of the same run twice queues it once. */
export function stepJobId(job: StepJob): string {
  return `${job.runId}/${job.address}`.replace(
    /[^A-Za-z0-9._/-]/g,
    (c) => `%${c.charCodeAt(0).toString(16)}`,
  );
}
