import { setMaxListeners } from "node:events";

/**
 * How a run is told to stop early, and why. One object the executor, the signal handlers,
 * the lock keeper and `cancel` share; each step consults it at its decision points.
 *
 * - `interrupted` (SIGINT/SIGTERM, or the lock was lost): stop submitting, cancel queued
 *   requests, stop watching running ones (they stay recorded for re-attachment).
 * - `cancelled` (`runflow cancel`): stop submitting, cancel queued requests, let running
 *   ones finish and collect them.
 * - `auth_failed` (401/403): nothing more can succeed; stop everything.
 * - `no_balance` (402): stop submitting; what already runs finishes.
 */
export type StopReason = "interrupted" | "cancelled" | "auth_failed" | "no_balance";

const MESSAGES: Record<StopReason, string> = {
  interrupted: "not submitted: the run was interrupted",
  cancelled: "not submitted: the run was cancelled",
  auth_failed: "not submitted: the API refused the token",
  no_balance: "not submitted: the RunComfy account has no balance left",
};

export class RunControl {
  #reason: StopReason | undefined;
  readonly #stopSubmitting = new AbortController();
  /** Aborted when watching remote requests must end too (interrupt, auth). */
  readonly #stopWatching = new AbortController();
  readonly #listeners: ((reason: StopReason) => void)[] = [];

  constructor() {
    // Every request in flight listens to these two: hundreds of listeners are expected.
    setMaxListeners(0, this.#stopSubmitting.signal, this.#stopWatching.signal);
  }

  /** The first reason given wins; later ones are ignored (an interrupt after a cancel stays a cancel, except it stops watching). */
  stop(reason: StopReason): void {
    const first = this.#reason === undefined;
    if (first) this.#reason = reason;
    if (reason === "interrupted" || reason === "auth_failed") {
      this.#stopWatching.abort(new StopSignal(reason));
    }
    this.#stopSubmitting.abort(new StopSignal(this.#reason ?? reason));
    if (first) for (const listener of this.#listeners) listener(reason);
  }

  get reason(): StopReason | undefined {
    return this.#reason;
  }

  get stopped(): boolean {
    return this.#reason !== undefined;
  }

  /** Aborts when no new submission may start. */
  get submitSignal(): AbortSignal {
    return this.#stopSubmitting.signal;
  }

  /** Aborts when requests already submitted must no longer be watched. */
  get watchSignal(): AbortSignal {
    return this.#stopWatching.signal;
  }

  get watching(): boolean {
    return !this.#stopWatching.signal.aborted;
  }

  onStop(listener: (reason: StopReason) => void): void {
    this.#listeners.push(listener);
  }

  /** The error recorded on a step that was never submitted because of the stop. */
  notSubmittedMessage(): string {
    return MESSAGES[this.#reason ?? "interrupted"];
  }
}

/** The abort reason of RunControl's signals: tells a stop apart from a timeout or a failure. */
export class StopSignal extends Error {
  constructor(readonly reason: StopReason) {
    super(`run stopped: ${reason}`);
    this.name = "StopSignal";
  }
}

export function isStopSignal(value: unknown): value is StopSignal {
  return value instanceof StopSignal;
}
