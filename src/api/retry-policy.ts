/**
 * When runflow tries an HTTP call again, and how long it waits first (SPEC §4 "Retries",
 * API.md "What runflow's client must do"). Pure: no I/O, no clock, no randomness of its own —
 * the caller passes `now` and `random`, so every decision is exact in tests.
 *
 * The rule that matters most: a submission is billed and the API has no idempotency key, so
 * a POST is sent again only when it surely created nothing (a 429, or a connection that
 * failed before the request left). Anything that may have created a request is `unknown`.
 *
 * This table decides about ONE HTTP call, inside the client (which call is tried again, how
 * often, after which wait). What a model step does once the client has given up — another
 * attempt, the end of the step and in which state, `unknown`, stopping the run — is the step
 * table's, src/engine/step-policy.ts (in the engine, which may read api/ but not the
 * reverse). Between them they hold every retry decision runflow makes.
 */
import type { HeaderReader } from "./http.js";
import type { Random } from "../util/clock.js";

export const PHASES = ["submit", "status", "result", "cancel", "download", "probe", "catalog"] as const;
/** Which call failed: the paid submission, an idempotent API call, or a call to a non-API host. */
export type Phase = (typeof PHASES)[number];

/**
 * - `retry`: try the same call again after a backoff.
 * - `fatal`: this call cannot succeed; fail it (and its step), keep the run going.
 * - `stop-run`: the token is refused; nothing more can succeed this run (exit 4).
 * - `unknown`: a submission may or may not have been created; never resend it automatically.
 */
export type RetryAction = "retry" | "fatal" | "stop-run" | "unknown";

export interface Classification {
  action: RetryAction;
  /** One line a user can read: what happened and why it is (not) retried. */
  reason: string;
  /** The wait the server asked for (`Retry-After`); only with `retry`. */
  retryAfterMs?: number;
  /** What went wrong, in the table's terms. */
  kind: FailureKind;
}

export interface ClassifyInput {
  phase: Phase;
  /** The HTTP status, when an answer arrived. */
  status?: number;
  /** The transport error, when no answer arrived. */
  error?: unknown;
  headers?: HeaderReader;
  /** `error_code` from an API error body, when there was one (403001 "not yours", 400004 "bad token"). */
  errorCode?: number;
  /** Milliseconds since the epoch; needed only to read a `Retry-After` given as an HTTP-date. */
  now?: number;
  /**
   * Why an answer that arrived cannot be used (a 2xx that is not JSON or empty, a body too
   * large or that stopped arriving); it wins over `status`.
   */
  unusable?: string;
}

/**
 * What went wrong, in the terms that decide retrying. A failure is one of these before it
 * meets the table below.
 */
export type FailureKind =
  | "not-sent"
  | "maybe-sent"
  | "tls-refused"
  | "rate-limited"
  | "server-error"
  | "token-refused"
  | "not-yours"
  | "client-error"
  | "unexpected-status"
  | "unusable-answer";

/**
 * Phases fall in three columns: the paid submission; idempotent calls that carry the token;
 * calls to other hosts that never carry it (so a 401/403 there says nothing about the token).
 */
type Column = "submit" | "api" | "tokenless";

const COLUMN_OF: Record<Phase, Column> = {
  submit: "submit",
  status: "api",
  result: "api",
  cancel: "api",
  catalog: "api",
  download: "tokenless",
  probe: "tokenless",
};

interface Row {
  submit: RetryAction;
  api: RetryAction;
  tokenless: RetryAction;
  /** Why, in the words the `reason` uses. */
  what: string;
}

/** The retry policy itself. Every cell is a deliberate choice; API.md gives the reasons. */
export const RETRY_TABLE: Readonly<Record<FailureKind, Readonly<Row>>> = {
  "not-sent": {
    submit: "retry",
    api: "retry",
    tokenless: "retry",
    what: "the connection failed before the request was sent",
  },
  "maybe-sent": {
    submit: "unknown",
    api: "retry",
    tokenless: "retry",
    what: "the connection failed after the request was sent",
  },
  "tls-refused": {
    submit: "fatal",
    api: "fatal",
    tokenless: "fatal",
    what: "the server's TLS certificate was refused",
  },
  "rate-limited": { submit: "retry", api: "retry", tokenless: "retry", what: "rate limited" },
  "server-error": { submit: "unknown", api: "retry", tokenless: "retry", what: "the server failed" },
  "token-refused": {
    submit: "stop-run",
    api: "stop-run",
    tokenless: "fatal",
    what: "the API token was refused",
  },
  "not-yours": {
    submit: "fatal",
    api: "fatal",
    tokenless: "fatal",
    what: "the request belongs to another API token",
  },
  "client-error": { submit: "fatal", api: "fatal", tokenless: "fatal", what: "the request was refused" },
  // A redirect or 1xx from the API: something between us and it (a proxy, a captive portal)
  // misbehaves. The request it was about still exists, so an idempotent call is tried again.
  "unexpected-status": {
    submit: "unknown",
    api: "retry",
    tokenless: "fatal",
    what: "the answer was not one the API gives",
  },
  // Broken like a 5xx (truncated or empty JSON, an endless or stalled body): retried the
  // same, and ends in an error (UnusableAnswerError) the run counts toward "API unreachable".
  "unusable-answer": {
    submit: "unknown",
    api: "retry",
    tokenless: "retry",
    what: "the answer could not be used",
  },
};

/** Errors raised while connecting: the request never left this machine. */
const CONNECT_PHASE_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Certificate problems: found during the handshake, and no retry will fix them. */
const TLS_CODES: ReadonlySet<string> = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

export const ErrorCodes = {
  /** RunComfy: the request belongs to another token. */
  notYours: 403001,
  /** RunComfy: bad or expired token (whatever the HTTP status). */
  badToken: 400004,
} as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/**
 * The code of a transport error as deep as it is buried. Node's fetch throws
 * `TypeError("fetch failed")` with the undici or socket error in `.cause` (sometimes
 * `.cause.cause`, or an AggregateError's `.errors` when several addresses were tried);
 * an abort surfaces as a DOMException named `AbortError` or `TimeoutError`.
 */
export function transportErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && isRecord(current); depth++) {
    if (typeof current.code === "string" && current.code !== "") return current.code;
    if (current.name === "TimeoutError" || current.name === "AbortError") return current.name;
    const errors = current.errors;
    if (Array.isArray(errors)) {
      const inner = errors.map(transportErrorCode).find((code) => code !== undefined);
      if (inner !== undefined) return inner;
    }
    current = current.cause;
  }
  return undefined;
}

/**
 * `Retry-After` in milliseconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). An
 * HTTP-date needs `now`; a date in the past means "now" (0).
 */
export function parseRetryAfter(value: string | null | undefined, now?: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (now === undefined || !/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function kindOfTransportError(error: unknown): { kind: FailureKind; code: string | undefined } {
  const code = transportErrorCode(error);
  if (code !== undefined && CONNECT_PHASE_CODES.has(code)) return { kind: "not-sent", code };
  if (code !== undefined && TLS_CODES.has(code)) return { kind: "tls-refused", code };
  // Anything else (reset, closed socket, header/body timeout, our own timeout, an error we
  // cannot place) may have happened after the request reached the server.
  return { kind: "maybe-sent", code };
}

function kindOfStatus(status: number, errorCode: number | undefined): FailureKind {
  if (errorCode === ErrorCodes.notYours) return "not-yours";
  if (errorCode === ErrorCodes.badToken || status === 401 || status === 403) return "token-refused";
  if (status === 429) return "rate-limited";
  if (status >= 500 && status <= 599) return "server-error";
  if (status >= 400 && status <= 499) return "client-error";
  return "unexpected-status";
}

const CONSEQUENCE: Record<RetryAction, string> = {
  retry: "retrying",
  fatal: "not retried",
  "stop-run": "stopping the run",
  unknown: "the submission may have been created, so it is not sent again",
};

/** Decides what to do about one failed call (DESIGN.md practice 6). */
export function classify(input: ClassifyInput): Classification {
  const column = COLUMN_OF[input.phase];
  let kind: FailureKind;
  let what: string;
  if (input.unusable !== undefined) {
    kind = "unusable-answer";
    what = `${input.unusable}: ${RETRY_TABLE[kind].what}`;
  } else if (input.status !== undefined) {
    kind = kindOfStatus(input.status, input.errorCode);
    const code = input.errorCode === undefined ? "" : `, error ${input.errorCode}`;
    what = `HTTP ${input.status}${code}: ${RETRY_TABLE[kind].what}`;
  } else {
    const transport = kindOfTransportError(input.error);
    kind = transport.kind;
    what = `${transport.code ?? "network error"}: ${RETRY_TABLE[kind].what}`;
  }
  const action = RETRY_TABLE[kind][column];
  const classification: Classification = {
    action,
    reason: `${input.phase}: ${what}; ${CONSEQUENCE[action]}`,
    kind,
  };
  if (action === "retry" && input.status !== undefined && input.unusable === undefined) {
    const retryAfterMs = parseRetryAfter(input.headers?.get("retry-after"), input.now);
    if (retryAfterMs !== undefined) classification.retryAfterMs = retryAfterMs;
  }
  return classification;
}

export interface BackoffPolicy {
  /** The ceiling of the first wait. */
  baseMs: number;
  /** No exponential wait is longer than this. */
  maxMs: number;
  /** Growth per retry (default 2). */
  factor?: number;
  /** The most of a server's `Retry-After` that is honoured (default 5 minutes). */
  maxRetryAfterMs?: number;
}

export const DEFAULT_MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * How long to wait before retry number `attempt` (1-based): capped exponential with *equal
 * jitter* — half of the step is always waited, the other half is random. Equal rather than
 * full jitter because a failing API then always gets a real breather (full jitter may retry
 * at once), while the random half still spreads a herd of concurrent pollers that failed
 * together. A `Retry-After` from the server wins, capped at `maxRetryAfterMs`.
 */
export function backoff(
  attempt: number,
  policy: BackoffPolicy,
  random: Random,
  retryAfterMs?: number,
): number {
  if (retryAfterMs !== undefined) {
    return Math.max(0, Math.min(retryAfterMs, policy.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS));
  }
  const step = Math.min(policy.maxMs, policy.baseMs * (policy.factor ?? 2) ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

export interface PollPolicy {
  /** First wait when nothing is known about how long the model takes (the second is the same). */
  initialMs: number;
  /**
   * While nothing is known, from the third look on: each look comes this multiple of the time
   * elapsed at the one before (1.25: a quarter later), so a request is seen at most a quarter
   * of its duration after its end (or `maxMs`).
   */
  factor: number;
  /** The longest wait between two polls once a request is overdue or its duration unknown. */
  maxMs: number;
  /** The shortest wait between two polls: never hammer. */
  minMs: number;
  /** Polled this long after the typical duration, so the first look usually finds it done. */
  marginMs: number;
  /** Once overdue, wait this fraction of the time elapsed since submission. */
  overdueFraction: number;
  /**
   * Once overdue but within the model's usual spread of its typical duration, wait this
   * fraction of the spread instead (when shorter): a model whose requests vary by ±0.2 s is
   * looked at again within 0.1 s, not a fifth of the elapsed time later.
   */
  spreadFraction: number;
  /** How far past due, in spreads, a request is still within its model's usual range. */
  usualSpreads: number;
  /** The longest single wait before the typical duration is reached. */
  maxHintedWaitMs: number;
}

/**
 * Without a hint: looks at 1 s and 2 s, then each a quarter of the elapsed time later, up to
 * 5 s apart (2.5 s, 3.1 s, 3.9 s, 4.9 s, 6.1 s … 18.6 s, 23.3 s, 28.3 s …), so a 2 s job costs
 * two status polls and a result and is seen at its end, and a 2.1 s one at 2.5 s, not 3.5 s.
 * Only one request per model looks on it (TypicalDurations' scout). With the model's typical
 * duration: one wait until just after it (most requests are done: one status, one result),
 * then waits of half the model's usual spread while within three spreads of it (at least
 * 100 ms), and beyond that a fifth of the elapsed time.
 */
export const DEFAULT_POLL_POLICY: Readonly<PollPolicy> = Object.freeze({
  initialMs: 1_000,
  factor: 1.25,
  maxMs: 5_000,
  minMs: 100,
  marginMs: 2,
  overdueFraction: 0.2,
  spreadFraction: 0.5,
  usualSpreads: 3,
  maxHintedWaitMs: 30_000,
});

export interface PollHint {
  /** How long this model's requests typically take from submission to the end, learned by the caller. */
  typicalMs?: number | undefined;
  /**
   * How far this model's durations usually are from `typicalMs` (a mean absolute deviation),
   * learned by the caller; undefined while unknown (then an overdue request waits a fifth of
   * its elapsed time).
   */
  spreadMs?: number | undefined;
  /** Time since the request was submitted. */
  elapsedMs: number;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

/** How long to wait before the next status poll, `pollCount` polls having been made. */
export function nextPollDelay(
  pollCount: number,
  policy: Readonly<PollPolicy> = DEFAULT_POLL_POLICY,
  hint?: PollHint,
): number {
  const typicalMs = hint?.typicalMs;
  if (hint === undefined || typicalMs === undefined || !(typicalMs > 0)) {
    return guessedWait(pollCount, pollCount === 0 ? 0 : guessedLookAt(pollCount - 1, policy), policy);
  }
  const untilDue = typicalMs + policy.marginMs - hint.elapsedMs;
  if (untilDue > 0) return Math.round(clamp(untilDue, policy.minMs, policy.maxHintedWaitMs));
  // Overdue before the first look (a re-attach, or a slow submission): look now.
  if (pollCount === 0) return policy.minMs;
  const elapsedWait = policy.overdueFraction * hint.elapsedMs;
  const spreadMs = hint.spreadMs;
  // Late within the model's usual range: its end is near, look again at the pace of its spread
  // (a model whose durations never vary, spread 0, at the shortest wait, once).
  if (spreadMs !== undefined && spreadMs >= 0) {
    const pastDue = -untilDue;
    if (pastDue <= Math.max(policy.minMs, policy.usualSpreads * spreadMs)) {
      const wait = Math.min(elapsedWait, policy.spreadFraction * spreadMs);
      return Math.round(clamp(wait, policy.minMs, policy.maxMs));
    }
  }
  // Later than usual (or the spread unknown): a fifth of the elapsed time, so a request that
  // takes ten times longer than usual costs a handful of polls, not hundreds.
  return Math.round(clamp(elapsedWait, policy.minMs, policy.maxMs));
}

/** Without a hint: the wait before look number `polls`, the look before it made `previousAt` ms after the submission. */
function guessedWait(polls: number, previousAt: number, policy: Readonly<PollPolicy>): number {
  const wait = polls < 2 ? policy.initialMs : (policy.factor - 1) * previousAt;
  return Math.round(clamp(wait, policy.minMs, policy.maxMs));
}

/**
 * When look number `polls` (0: the first) at a request whose duration is unknown is due, in
 * ms after its submission: the sum of the waits nextPollDelay gives without a hint (1 s, 2 s,
 * 2.5 s, 3.1 s …).
 */
export function guessedLookAt(polls: number, policy: Readonly<PollPolicy> = DEFAULT_POLL_POLICY): number {
  let at = 0;
  for (let look = 0; look <= polls; look++) {
    const wait = guessedWait(look, at, policy);
    // Once the waits reach their longest, the rest is one multiplication.
    if (wait >= policy.maxMs) return at + (polls - look + 1) * policy.maxMs;
    at += wait;
  }
  return at;
}

/**
 * The looks at one request whose duration is unknown, on one schedule counted from its
 * submission (guessedLookAt), not each wait from the previous answer: the time each look
 * itself took (its round trip, the work after it, a timer firing late) would push every
 * later look later, and a 2 s job would be seen 10–30 ms after its end. A look that falls
 * behind (a slow answer, a retried poll) is made after the shortest wait, and the rest of
 * the schedule moves with it, so being late never brings looks closer than `minMs`.
 */
export class GuessedLooks {
  readonly #startedAt: number;
  readonly #policy: Readonly<PollPolicy>;
  #shiftMs = 0;

  constructor(startedAt: number, policy: Readonly<PollPolicy> = DEFAULT_POLL_POLICY) {
    this.#startedAt = startedAt;
    this.#policy = policy;
  }

  /** How long to wait, from `now`, before look number `polls`. */
  delay(polls: number, now: number): number {
    const wait = this.#startedAt + this.#shiftMs + guessedLookAt(polls, this.#policy) - now;
    if (wait >= this.#policy.minMs) return wait;
    this.#shiftMs += this.#policy.minMs - wait;
    return this.#policy.minMs;
  }
}
