/**
 * Whether the API currently answers, seen from every call the client makes: it turns a
 * stream of failed and successful calls into two changes — "failing since …" when the first
 * transient failure (isApiTrouble: no connection, a 5xx, an unusable answer) follows an
 * answer, "answers again" when an answer follows failures — so a user hears once when the
 * API breaks and once when it recovers, not once per poll.
 */
import { formatDuration } from "../util/duration.js";

export type ApiHealthChange =
  | {
      kind: "failing";
      /** When the first failure of this stretch happened (ms since the epoch, on the client's clock). */
      since: number;
      /** The classification's reason of that first failure. */
      reason: string;
    }
  | {
      kind: "recovered";
      since: number;
      at: number;
      /** Failed calls during the stretch (each retry counts). */
      failures: number;
    };

export type ApiHealthListener = (change: ApiHealthChange) => void;

export class ApiHealth {
  #failingSince: number | undefined;
  #failures = 0;

  constructor(private readonly listener: ApiHealthListener | undefined) {}

  /** A call failed in a way that says the API is unreachable or broken. */
  failed(now: number, reason: string): void {
    this.#failures++;
    if (this.#failingSince !== undefined) return;
    this.#failingSince = now;
    this.listener?.({ kind: "failing", since: now, reason });
  }

  /** The API gave a usable answer (a success, or a refusal: either way it is there). */
  answered(now: number): void {
    if (this.#failingSince === undefined) return;
    const change: ApiHealthChange = {
      kind: "recovered",
      since: this.#failingSince,
      at: now,
      failures: this.#failures,
    };
    this.#failingSince = undefined;
    this.#failures = 0;
    this.listener?.(change);
  }

  get failingSince(): number | undefined {
    return this.#failingSince;
  }
}

/** The line a user reads about a change: once when the API starts failing, once when it answers again. */
export function describeHealthChange(change: ApiHealthChange): string {
  if (change.kind === "failing") return `the RunComfy API is failing (${change.reason})`;
  const calls = change.failures === 1 ? "1 failed call" : `${change.failures} failed calls`;
  return `the RunComfy API answers again, after ${formatDuration(change.at - change.since)} and ${calls}`;
}
