/**
 * What a model step does about everything that can go wrong with it: ONE table, STEP_TABLE
 * below. The engine (model-step.ts) only asks it — `decide(event, attemptContext)` — and acts
 * on the answer; change a row and a step does something else.
 *
 * Retrying happens at two levels, each decided by its own table, and they never overlap:
 *
 * - **One HTTP call** — src/api/retry-policy.ts, `RETRY_TABLE`, inside the client: a 429
 *   (Retry-After honoured), a 5xx or a cut connection on an idempotent call, a connection that
 *   failed before a POST left. The client tries the same call again a few times; then it
 *   raises a typed error (src/api/errors.ts), or, for a submission that may have been created,
 *   answers `unknown`.
 * - **One step** — this module, once the client has given up or the request itself ended
 *   badly: whether the step makes another attempt (a new, billed submission) and after which
 *   backoff, keeps polling, ends (in which state), is `unknown`, or stops the whole run.
 *
 * Why here and not in src/api/: the engine may import api/, never the reverse, and the step's
 * situations include the engine's own (a timeout, the run's stop signals, a step's retry
 * settings). The HTTP table stays where the client is; this module reads its errors.
 *
 * Pure: no I/O, no clock; randomness (the backoff's jitter) comes in with the context.
 */
import {
  ApiAuthError,
  ApiError,
  ForbiddenRequestError,
  InputRejectedError,
  ModelNotFoundError,
  NoBalanceError,
  RateLimitedError,
  RequestNotFoundError,
} from "../api/errors.js";
import { backoff, type BackoffPolicy } from "../api/retry-policy.js";
import type { Random } from "../util/clock.js";
import { formatDuration } from "../util/duration.js";
import type { RetryPolicy } from "../workflow/types.js";
import { isStopSignal } from "./run-control.js";

/** The watch of an attempt ended because the step's `timeout` passed. */
export class AttemptTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${formatDuration(timeoutMs)}`);
  }
}

/** The watch of an attempt ended because `runflow cancel` cancelled its queued request. */
export class CancelledWhileQueued extends Error {}

/** What a step meets, as the engine hands it over (a real error object where there is one). */
export type StepEvent =
  /** An earlier run's submission of this step may have been created: no id was recorded. */
  | { at: "earlier-submission" }
  /** `submit` threw: by the client's contract nothing was created. */
  | { at: "submit"; error: unknown }
  /** `submit` answered `unknown`: the request may exist (and be billed). */
  | { at: "submit-answer-lost" }
  /**
   * Watching the request ended early: a poll failed for good (after the client's retries),
   * or the watch's signal aborted (`aborted`: then `error` is its reason — a timeout, a
   * cancel while queued, the run's stop).
   */
  | { at: "watch"; error: unknown; aborted: boolean }
  /** The request ended badly at the API. `empty-success`: succeeded with no usable output. */
  | { at: "result"; status: "failed" | "cancelled" | "empty-success" }
  /** Downloading an output failed (`aborted`: the run stopped watching). */
  | { at: "download"; error: unknown; aborted: boolean };

/** The rows of the table: every situation a step can meet that is not a success. */
export const STEP_SITUATIONS = [
  "earlier-submission-unknown",
  "submit-token-refused",
  "submit-no-balance",
  "submit-input-rejected",
  "submit-model-not-found",
  "submit-refused",
  "submit-rate-limited",
  "submit-not-created",
  "submit-stopped",
  "submit-answer-lost",
  "poll-token-refused",
  "poll-request-gone",
  "poll-failed",
  "remote-failed",
  "remote-empty-success",
  "remote-cancelled",
  "cancelled-while-queued",
  "timed-out",
  "interrupted-while-remote",
  "stopped-while-remote",
  "download-failed",
  "download-stopped",
] as const;
export type StepSituation = (typeof STEP_SITUATIONS)[number];

/** The states a step ends in when the policy ends it. */
export type EndState = "failed" | "cancelled" | "timed_out" | "unknown";

/**
 * One row. `why` is the reason in words, for readers of the table and its tests.
 *
 * - `retry`: another try after a backoff. `backoff: "attempt"` is a new attempt (a new
 *   submission) under the step's `retry` settings; when none is left, or the run is stopping,
 *   the step ends in `endsIn`. `backoff: "poll"` polls the same request again (never a
 *   resubmission) with POLL_ERROR_BACKOFF, for as long as the step's timeout allows.
 * - `final`: the step ends now, in `endsIn`.
 * - `unknown`: the submission may have been created (and billed): the step ends `unknown`,
 *   and is submitted again only when resubmitting is asked for (the run's `--resubmit-unknown`
 *   or the step's `retry.resubmit_unknown`) — then like a `retry` row ending `unknown`.
 * - `stop_run`: nothing more can succeed this run (`auth_failed`, exit 4) or be paid for
 *   (`no_balance`); the step itself ends `failed`, or is `left` for the next apply to
 *   re-attach to when its request exists.
 * - `stopped`: the run's own stop (interrupt, cancel, a lost lock): not the step's failure.
 *   It is left as it is (recorded for the next apply), except that an interrupted request
 *   still queued is cancelled when `cancelQueued` (nobody would collect it this run).
 */
export type StepRule =
  | { decision: "retry"; backoff: "attempt" | "poll"; endsIn: EndState; why: string }
  | { decision: "final"; endsIn: EndState; why: string }
  | { decision: "unknown"; backoff: "attempt" | "none"; why: string }
  | { decision: "stop_run"; stop: "auth_failed" | "no_balance"; step: "failed" | "left"; why: string }
  | { decision: "stopped"; cancelQueued: boolean; why: string };

export type StepTable = Readonly<Record<StepSituation, Readonly<StepRule>>>;

/** The step-level retry policy itself. Every row is a deliberate choice. */
export const STEP_TABLE: StepTable = {
  // Before anything is sent: plan and apply hold such a step `unknown` (SPEC §5).
  "earlier-submission-unknown": {
    decision: "unknown",
    backoff: "none",
    why: "an earlier run's submission may have been created and billed",
  },

  // The submission threw (the client retried what it could first): nothing was created.
  "submit-token-refused": {
    decision: "stop_run",
    stop: "auth_failed",
    step: "failed",
    why: "the API refused the token: nothing more can succeed",
  },
  "submit-no-balance": {
    decision: "stop_run",
    stop: "no_balance",
    step: "failed",
    why: "no balance: no further submission can be paid for; what runs finishes",
  },
  "submit-input-rejected": {
    decision: "final",
    endsIn: "failed",
    why: "the server refused the input (422): sending it again gets the same answer",
  },
  "submit-model-not-found": {
    decision: "final",
    endsIn: "failed",
    why: "the API has no such model: sending it again gets the same answer",
  },
  "submit-refused": {
    decision: "final",
    endsIn: "failed",
    why: "any other 4xx but 429 (403001 included): the request was refused",
  },
  "submit-rate-limited": {
    decision: "retry",
    backoff: "attempt",
    endsIn: "failed",
    why: "still rate limited after the client's own waits: nothing created, so trying later is free",
  },
  "submit-not-created": {
    decision: "retry",
    backoff: "attempt",
    endsIn: "failed",
    why: "no answer after the client's own retries (the connection failed before the request left, a refused certificate), or an unexpected error: nothing was created",
  },
  "submit-stopped": {
    decision: "stopped",
    cancelQueued: false,
    why: "the run stopped during the client's wait between tries: nothing was sent",
  },
  "submit-answer-lost": {
    decision: "unknown",
    backoff: "attempt",
    why: "the submission may have been created (a 5xx, an answer lost or unusable): never sent again unless asked",
  },

  // Watching a request that exists: it is never submitted again from here.
  "poll-token-refused": {
    decision: "stop_run",
    stop: "auth_failed",
    step: "left",
    why: "the API refused the token; the request stays recorded for the next apply",
  },
  "poll-request-gone": {
    decision: "final",
    endsIn: "failed",
    why: "the API does not know the request (404001, expired) or it belongs to another token (403001)",
  },
  "poll-failed": {
    decision: "retry",
    backoff: "poll",
    endsIn: "failed",
    why: "status or result failed after the client's retries (5xx, network, 429): the request may still run, keep watching it",
  },
  "remote-failed": {
    decision: "retry",
    backoff: "attempt",
    endsIn: "failed",
    why: "the request failed at the API: a new attempt may succeed",
  },
  "remote-empty-success": {
    decision: "retry",
    backoff: "attempt",
    endsIn: "failed",
    why: "the request succeeded with no usable output: the API failed it, like a remote failure",
  },
  "remote-cancelled": {
    decision: "final",
    endsIn: "cancelled",
    why: "someone cancelled the request at the API",
  },
  "cancelled-while-queued": {
    decision: "final",
    endsIn: "cancelled",
    why: "`runflow cancel` cancelled the queued request",
  },
  "timed-out": {
    decision: "retry",
    backoff: "attempt",
    endsIn: "timed_out",
    why: "the step's timeout passed (the request is cancelled when still queued)",
  },
  "interrupted-while-remote": {
    decision: "stopped",
    cancelQueued: true,
    why: "interrupted: a queued request is cancelled, a running one left for the next apply",
  },
  "stopped-while-remote": {
    decision: "stopped",
    cancelQueued: false,
    why: "the run stopped watching: the request stays recorded for the next apply",
  },

  // The request succeeded; only saving its files failed.
  "download-failed": {
    decision: "final",
    endsIn: "failed",
    why: "the request succeeded and stays recorded: the next apply collects it without paying twice",
  },
  "download-stopped": {
    decision: "stopped",
    cancelQueued: false,
    why: "the run stopped watching during the download: the next apply collects the request",
  },
};

/** Waits between polls that failed for a transient reason (the client already retried each call). */
export const POLL_ERROR_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({ baseMs: 1_000, maxMs: 30_000 });

/** Where the step stands when it meets something. */
export interface AttemptContext {
  /** The attempt that met it, 1-based (0 before the first). */
  attempt: number;
  /** The step's `retry` settings. */
  retry: Pick<RetryPolicy, "attempts" | "backoffMs" | "maxBackoffMs">;
  /** Whether a submission that may have been created is sent again: see resubmitsUnknown. */
  resubmitUnknown: boolean;
  /** The run is stopping: no new attempt starts. */
  stopping: boolean;
  /** Failed polls in a row in this watch, this one included (a `poll` row's backoff). */
  pollFailures: number;
  random: Random;
}

/** The policy's answer. `situation` names the row it comes from. */
export type StepDecision =
  /** Try again after `waitMs`: a new attempt, or (`before: "poll"`) the next poll. */
  | { kind: "retry"; situation: StepSituation; waitMs: number; before: "attempt" | "poll" }
  /** The step ends in `state`; `retriesEnded` when it is a retry row that ran out of attempts (or the run is stopping). */
  | { kind: "final"; situation: StepSituation; state: EndState; retriesEnded: boolean }
  /** May have been created: not sent again; the step ends `unknown`. */
  | { kind: "unknown"; situation: StepSituation }
  | {
      kind: "stop_run";
      situation: StepSituation;
      stop: "auth_failed" | "no_balance";
      step: "failed" | "left";
    }
  | { kind: "stopped"; situation: StepSituation; cancelQueued: boolean };

export interface StepPolicy {
  decide(event: StepEvent, context: AttemptContext): StepDecision;
}

/**
 * Whether a submission that may have been created is sent again — the run's option
 * (`--resubmit-unknown`) or the step's `retry.resubmit_unknown`. The one place it is worked out.
 */
export function resubmitsUnknown(
  runOption: boolean,
  stepRetry: Pick<RetryPolicy, "resubmitUnknown">,
): boolean {
  return runOption || stepRetry.resubmitUnknown;
}

function isClientError(error: unknown): boolean {
  return error instanceof ApiError && error.status !== undefined && error.status >= 400 && error.status < 500;
}

function submitSituation(error: unknown): StepSituation {
  if (isStopSignal(error)) return "submit-stopped";
  if (error instanceof ApiAuthError) return "submit-token-refused";
  if (error instanceof NoBalanceError) return "submit-no-balance";
  if (error instanceof InputRejectedError) return "submit-input-rejected";
  if (error instanceof ModelNotFoundError) return "submit-model-not-found";
  if (error instanceof RateLimitedError) return "submit-rate-limited";
  if (isClientError(error)) return "submit-refused";
  return "submit-not-created";
}

function watchSituation(error: unknown, aborted: boolean): StepSituation {
  if (aborted) {
    if (error instanceof AttemptTimeout) return "timed-out";
    if (error instanceof CancelledWhileQueued) return "cancelled-while-queued";
    if (isStopSignal(error) && error.reason === "interrupted") return "interrupted-while-remote";
    return "stopped-while-remote";
  }
  if (error instanceof ApiAuthError) return "poll-token-refused";
  if (error instanceof RequestNotFoundError || error instanceof ForbiddenRequestError)
    return "poll-request-gone";
  return "poll-failed";
}

const RESULT_SITUATION = {
  failed: "remote-failed",
  cancelled: "remote-cancelled",
  "empty-success": "remote-empty-success",
} as const satisfies Record<Extract<StepEvent, { at: "result" }>["status"], StepSituation>;

/** The row an event falls in: the only place that looks at error classes. */
export function situationOf(event: StepEvent): StepSituation {
  switch (event.at) {
    case "earlier-submission":
      return "earlier-submission-unknown";
    case "submit":
      return submitSituation(event.error);
    case "submit-answer-lost":
      return "submit-answer-lost";
    case "watch":
      return watchSituation(event.error, event.aborted);
    case "result":
      return RESULT_SITUATION[event.status];
    case "download":
      return event.aborted ? "download-stopped" : "download-failed";
  }
}

/** A retry row's answer: the wait before the next try, or the end when no try is left. */
function retryOrEnd(
  situation: StepSituation,
  backoffKind: "attempt" | "poll" | "none",
  endsIn: EndState,
  context: AttemptContext,
): StepDecision {
  switch (backoffKind) {
    case "none":
      return { kind: "retry", situation, waitMs: 0, before: "attempt" };
    case "poll":
      return {
        kind: "retry",
        situation,
        waitMs: backoff(context.pollFailures, POLL_ERROR_BACKOFF, context.random),
        before: "poll",
      };
    case "attempt": {
      if (context.attempt >= context.retry.attempts || context.stopping) {
        return { kind: "final", situation, state: endsIn, retriesEnded: true };
      }
      const policy = { baseMs: context.retry.backoffMs, maxMs: context.retry.maxBackoffMs };
      return {
        kind: "retry",
        situation,
        waitMs: backoff(context.attempt, policy, context.random),
        before: "attempt",
      };
    }
  }
}

/** A policy reading `table`: STEP_TABLE for runs, another one in tests that prove the engine follows it. */
export function createStepPolicy(table: StepTable = STEP_TABLE): StepPolicy {
  return {
    decide(event, context) {
      const situation = situationOf(event);
      const rule = table[situation];
      switch (rule.decision) {
        case "retry":
          return retryOrEnd(situation, rule.backoff, rule.endsIn, context);
        case "final":
          return { kind: "final", situation, state: rule.endsIn, retriesEnded: false };
        case "unknown":
          return context.resubmitUnknown
            ? retryOrEnd(situation, rule.backoff, "unknown", context)
            : { kind: "unknown", situation };
        case "stop_run":
          return { kind: "stop_run", situation, stop: rule.stop, step: rule.step };
        case "stopped":
          return { kind: "stopped", situation, cancelQueued: rule.cancelQueued };
      }
    },
  };
}

/** The policy every run uses unless one is injected (EngineDeps.stepPolicy). */
export const STEP_POLICY: StepPolicy = createStepPolicy();
