/**
 * The one state machine every step goes through (DESIGN §7). States are plain strings so
 * they can be stored, printed and sent as NDJSON as they are.
 */
export const StepState = {
  /** Waiting for the steps it depends on. */
  pending: "pending",
  /** Ready; waiting for a concurrency slot, or for the backoff before its next attempt. */
  waiting: "waiting",
  /** The POST is on the wire: from here on the request may exist and may be billed. */
  submitting: "submitting",
  in_queue: "in_queue",
  in_progress: "in_progress",
  downloading: "downloading",
  /** A run step's process is executing. */
  running: "running",
  succeeded: "succeeded",
  reused: "reused",
  failed: "failed",
  timed_out: "timed_out",
  cancelled: "cancelled",
  /** The submission's answer was lost: the request may exist and be billed. Never resubmitted silently. */
  unknown: "unknown",
  /** A step it depends on did not succeed, so it was not run. */
  blocked: "blocked",
  /**
   * Held back by the budget (SPEC §9): never submitted, because its estimate would have taken
   * this apply's spending past `--max-cost`. A later apply (with a larger budget) submits it.
   */
  held: "held",
} as const;
export type StepState = (typeof StepState)[keyof typeof StepState];

const S = StepState;

export const TERMINAL_STATES: ReadonlySet<StepState> = new Set([
  S.succeeded,
  S.reused,
  S.failed,
  S.timed_out,
  S.cancelled,
  S.unknown,
  S.blocked,
  S.held,
]);

/** Terminal states a `retry` re-runs (SPEC §2); `unknown` only with --resubmit-unknown. */
export const RETRYABLE_STATES: ReadonlySet<StepState> = new Set([
  S.failed,
  S.timed_out,
  S.cancelled,
  S.blocked,
  S.held,
]);

export function isTerminal(state: StepState): boolean {
  return TERMINAL_STATES.has(state);
}

export function isSuccess(state: StepState): boolean {
  return state === S.succeeded || state === S.reused;
}

// Re-attachment after a crash can enter in_queue / in_progress straight from pending.
const REMOTE = [S.in_queue, S.in_progress] as const;
const ENDINGS = [S.succeeded, S.failed, S.timed_out, S.cancelled, S.unknown] as const;

/** Allowed edges. A step that fails an attempt goes back to `waiting` for the next one. */
const EDGES: Record<StepState, readonly StepState[]> = {
  pending: [S.waiting, S.blocked, S.reused, S.failed, S.cancelled, S.unknown, S.downloading, ...REMOTE],
  waiting: [
    S.submitting,
    S.running,
    S.reused,
    S.failed,
    S.cancelled,
    S.unknown,
    S.held,
    S.downloading,
    ...REMOTE,
  ],
  submitting: [...REMOTE, S.downloading, ...ENDINGS, S.waiting],
  in_queue: [S.in_queue, S.in_progress, S.downloading, ...ENDINGS, S.waiting],
  in_progress: [S.in_progress, S.downloading, ...ENDINGS, S.waiting],
  downloading: [S.succeeded, S.failed, S.cancelled, S.waiting],
  running: [S.succeeded, S.failed, S.timed_out, S.cancelled, S.waiting],
  // A retry within the same run starts the next attempt from a failed or timed-out one.
  failed: [S.waiting],
  timed_out: [S.waiting],
  succeeded: [],
  reused: [],
  cancelled: [],
  unknown: [],
  blocked: [],
  held: [],
};

export function canTransition(from: StepState, to: StepState): boolean {
  return EDGES[from].includes(to);
}

export class IllegalTransitionError extends Error {
  constructor(address: string, from: StepState, to: StepState) {
    super(`step ${address}: illegal state change ${from} → ${to}`);
  }
}

/** The header groups of the progress view and the summary (SPEC §6). */
export const DISPLAY_GROUP: Record<
  StepState,
  "queued" | "submitted" | "running" | "done" | "reused" | "failed"
> = {
  pending: "queued",
  waiting: "queued",
  submitting: "submitted",
  in_queue: "submitted",
  in_progress: "running",
  running: "running",
  downloading: "running",
  succeeded: "done",
  reused: "reused",
  failed: "failed",
  timed_out: "failed",
  cancelled: "failed",
  unknown: "failed",
  blocked: "failed",
  held: "failed",
};
