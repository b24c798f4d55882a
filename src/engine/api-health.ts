/**
 * Whether the API is answering, judged across all the steps of a run from the calls the
 * steps make: `threshold` transient failures in a row (no usable answer in between) make it
 * unreachable, the next usable answer makes it recovered. Each change is reported once, so
 * a view says "API unreachable" once per outage, not once per poll.
 *
 * What counts as a transient failure is the API client's classification (isTransientApiFailure),
 * never a list of status codes here. Pure: times come in with the observations.
 */
import { ApiError } from "../api/errors.js";

/**
 * Error codes of the API client's errors that say "try again later": a 5xx, a 429 after its
 * retries, no answer at all, an answer that could not be used (an HTML page, a cut or empty
 * body). Anything else (a refused input, a lost request, the token) is about one call, not
 * about the API being there.
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  "api_server_error",
  "api_rate_limited",
  "api_unreachable",
  "api_unusable_answer",
]);

export function isTransientApiFailure(error: unknown): boolean {
  return error instanceof ApiError && TRANSIENT_CODES.has(error.code);
}

export type ApiHealthChange =
  | { kind: "unreachable"; since: number; failures: number; error: string }
  | { kind: "recovered"; since: number };

export class ApiHealth {
  readonly #threshold: number;
  #failures = 0;
  #firstFailureAt = 0;
  /** When it was declared unreachable (the streak's first failure); undefined while healthy. */
  #unreachableSince: number | undefined;

  /**
   * `threshold`: failures in a row that make the API unreachable. Each failure a step sees
   * comes after the client's own retries of that call, so one already means several.
   */
  constructor(threshold = 1) {
    this.#threshold = Math.max(1, Math.floor(threshold));
  }

  get unreachable(): boolean {
    return this.#unreachableSince !== undefined;
  }

  /**
   * A call failed for a transient reason; returns the change when it makes the API
   * unreachable. `since`: when the caller last had an answer (its failing tries began after
   * it), so the outage is dated from then, not from when the client gave up.
   */
  failed(at: number, error: string, since: number = at): ApiHealthChange | undefined {
    const began = Math.min(since, at);
    if (this.#failures === 0 || began < this.#firstFailureAt) this.#firstFailureAt = began;
    this.#failures += 1;
    if (this.#unreachableSince !== undefined || this.#failures < this.#threshold) return undefined;
    this.#unreachableSince = this.#firstFailureAt;
    return { kind: "unreachable", since: this.#firstFailureAt, failures: this.#failures, error };
  }

  /** A call got a usable answer; returns the change when the API was unreachable until now. */
  answered(): ApiHealthChange | undefined {
    this.#failures = 0;
    const since = this.#unreachableSince;
    if (since === undefined) return undefined;
    this.#unreachableSince = undefined;
    return { kind: "recovered", since };
  }
}

/** What the steps tell: the outcome of each API call they see. */
export interface ApiHealthMonitor {
  /**
   * A call failed: counts when transient; an API error that is not (a refusal) is still an
   * answer. `since`: when the caller last had an answer, or began trying.
   */
  failed(error: unknown, since?: number): void;
  /** A call got a usable answer. */
  answered(): void;
}

/** Feeds `health` from the steps' calls and announces each change it makes. */
export function apiHealthMonitor(
  health: ApiHealth,
  now: () => number,
  announce: (change: ApiHealthChange, at: number) => void,
): ApiHealthMonitor {
  const tell = (change: ApiHealthChange | undefined, at: number) => {
    if (change) announce(change, at);
  };
  return {
    failed(error, since) {
      if (isTransientApiFailure(error)) {
        const at = now();
        tell(health.failed(at, firstLine(error instanceof Error ? error.message : String(error)), since), at);
      } else if (error instanceof ApiError) {
        tell(health.answered(), now());
      }
    },
    answered() {
      // Most calls answer while all is well: no clock read, no allocation then.
      if (health.unreachable) tell(health.answered(), now());
      else health.answered();
    },
  };
}

function firstLine(text: string): string {
  return (text.split(/\r?\n/, 1)[0] ?? "").trim();
}
