/**
 * runflow's client of the RunComfy Model API (API.md). Every call goes through one loop:
 * send → classify the failure (retry-policy.ts) → back off and retry, or raise a typed error.
 *
 * Invariants the engine relies on:
 * - `submit` resolves `submitted` (persist the id at once), resolves `unknown` (the request
 *   may exist: report it, never resend it blindly), or throws — and a throw means nothing was
 *   created (a 4xx, or retries exhausted on a 429 / connect-phase failure).
 * - The token is sent only to the base URL's origin, never followed through a redirect,
 *   and never appears in an error, `toJSON()` or `util.inspect`.
 */
import { inspect } from "node:util";
import { UsageError } from "../errors.js";
import type { ModelEntry } from "../models/types.js";
import { systemClock, type Clock, type Random } from "../util/clock.js";
import {
  catalogEntries,
  isTerminalResult,
  isTerminalStatus,
  nextCatalogPage,
  toCancelOutcome,
  toModelPrice,
  toRequestResult,
  toRequestStatus,
  type CancelOutcome,
  type ModelPriceAnswer,
  type RequestResult,
  type RequestStatus,
  type SubmitOutcome,
} from "./answers.js";
import { isUnusableAnswer, readBoundedText } from "./bounded-body.js";
import { fetchTransport, undiciTransport, type HeaderReader, type HttpTransport } from "./http.js";
import {
  ApiError,
  errorFromAnswer,
  ModelNotFoundError,
  parseErrorBody,
  TransportError,
  UnusableAnswerError,
  type ApiErrorContext,
} from "./errors.js";
import {
  backoff,
  classify,
  DEFAULT_POLL_POLICY,
  GuessedLooks,
  nextPollDelay,
  transportErrorCode,
  type BackoffPolicy,
  type Classification,
  type Phase,
  type PollPolicy,
} from "./retry-policy.js";
import {
  checkBaseUrl,
  DEFAULT_BASE_URL,
  encodeModelId,
  isSameOrigin,
  requestUrl,
  trustedUrl,
} from "./urls.js";

export interface RetryOptions {
  /** Every try counts, the first included (default 5). */
  attempts?: number;
  /** Ceiling of the first backoff (default 500 ms). */
  baseMs?: number;
  /** Longest exponential backoff (default 30 s). */
  maxMs?: number;
  /** The most of a `Retry-After` honoured (default 5 min). */
  maxRetryAfterMs?: number;
}

export interface RunComfyClientOptions {
  /** Default https://model-api.runcomfy.net; plain http only on loopback. */
  baseUrl?: string;
  token: string;
  /** Injected for tests (faults in front of the network); default undici's `request` (http.ts). */
  fetch?: typeof fetch;
  /** Backoff and poll waits sleep through it (default: real time). */
  clock?: Clock;
  /** Jitter source (default Math.random). */
  random?: Random;
  retry?: RetryOptions;
  /** The longest wait for an answer, and for each pause in its body (default 60 s). Real time, not `clock`. */
  requestTimeoutMs?: number;
  /** The largest answer body read (default 8 MB); a larger one is an unusable answer, retried like a 5xx. */
  maxAnswerBytes?: number;
  userAgent?: string;
  /** Overrides of the poll schedule (retry-policy.ts DEFAULT_POLL_POLICY). */
  poll?: Partial<PollPolicy>;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface SubmitOptions extends CallOptions {
  /**
   * Ends the waits between tries (a 429's Retry-After, a backoff) at once and sends nothing
   * more, throwing its reason; unlike `signal` it never cuts a POST already on the wire, whose
   * answer is awaited so a request it created is not lost. (A run's stop.)
   */
  stopSignal?: AbortSignal | undefined;
}

/**
 * What the caller learns about the model's durations while a request is watched (the
 * engine's TypicalDurations): asked before each wait, so a duration learned from another
 * request of the model re-plans this one's next poll, even mid-wait.
 */
export interface PollGuide {
  /** The model's typical duration now, submission to end; undefined while none has finished. */
  typicalMs(): number | undefined;
  /** How far the model's durations usually are from `typicalMs`; undefined while unknown. */
  spreadMs?(): number | undefined;
  /**
   * While no duration is known, whether this request looks on the guessing schedule. Only
   * one request of a model needs to (its end teaches the others when to look); the others
   * wait long (PollPolicy.maxMs) unless `changed` wakes them first.
   */
  guessing(): boolean;
  /** Aborts when what the guide says may have changed: the wait in progress is planned again. */
  changed(): AbortSignal;
  /**
   * The duration `typicalMs` gives is a first bound (what one request's look saw), soon
   * replaced by the exact one: a wait planned on it is planned again when `changed` fires.
   */
  provisional?(): boolean;
}

export interface WaitOptions extends CallOptions {
  /** Called with every status polled. */
  onStatus?: ((status: RequestStatus) => void) | undefined;
  /** This model's typical duration, submission to end (see serverDurationMs); shapes the poll schedule. */
  typicalMs?: number | undefined;
  /** How far its durations usually are from `typicalMs` (mean absolute deviation): paces the looks once overdue. */
  spreadMs?: number | undefined;
  /** Instead of `typicalMs`: a duration that may be learned while this request is watched. */
  guide?: PollGuide | undefined;
  /** When the request was submitted, on `clock` (default: now). For re-attaching after a restart. */
  startedAt?: number | undefined;
  /**
   * Asks for the status at once, before the first wait: re-attaching to a request nobody
   * watched for a while (it may have ended, and the views should show where it is now).
   */
  lookFirst?: boolean | undefined;
}

export const DEFAULT_RETRY = { attempts: 5, baseMs: 500, maxMs: 30_000 } as const;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** A few MB: the catalog's pages with schemas are the largest answers; a status is a few hundred bytes. */
export const DEFAULT_MAX_ANSWER_BYTES = 8 * 1024 * 1024;
const MAX_CATALOG_PAGES = 10_000;

type Exchange =
  | { kind: "answer"; status: number; headers: HeaderReader; text: string }
  /** An answer arrived but cannot be used (too large, stalled, a 2xx that is not JSON). */
  | { kind: "unusable"; status: number; problem: string }
  | { kind: "transport"; error: unknown }
  /** The caller's signal aborted while the call was in flight. */
  | { kind: "aborted"; reason: unknown };

type Attempted = { kind: "ok"; body: unknown } | { kind: "unknown"; reason: string };

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (Number.isInteger(value) && value >= 1) return value;
  throw new UsageError(`Expected \`${name}\` to be an integer ≥ 1, got \`${value}\``);
}

function nonNegative(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (Number.isFinite(value) && value >= 0) return value;
  throw new UsageError(`Expected \`${name}\` to be a number ≥ 0, got \`${value}\``);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export class RunComfyClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #transport: HttpTransport;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #attempts: number;
  readonly #backoff: BackoffPolicy;
  readonly #requestTimeoutMs: number;
  readonly #maxAnswerBytes: number;
  readonly #userAgent: string;
  readonly #poll: Readonly<PollPolicy>;

  constructor(options: RunComfyClientOptions) {
    if (typeof options.token !== "string" || options.token.trim() === "") {
      throw new UsageError("Expected `token` to be a non-empty string", {
        hint: "set RUNCOMFY_API_TOKEN to your RunComfy API key",
      });
    }
    this.baseUrl = checkBaseUrl(options.baseUrl ?? DEFAULT_BASE_URL);
    this.#token = options.token.trim();
    this.#transport = options.fetch ? fetchTransport(options.fetch) : undiciTransport;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    const retry = options.retry ?? {};
    this.#attempts = positiveInteger(retry.attempts, "retry.attempts", DEFAULT_RETRY.attempts);
    this.#backoff = {
      baseMs: nonNegative(retry.baseMs, "retry.baseMs", DEFAULT_RETRY.baseMs),
      maxMs: nonNegative(retry.maxMs, "retry.maxMs", DEFAULT_RETRY.maxMs),
      ...(retry.maxRetryAfterMs === undefined
        ? {}
        : { maxRetryAfterMs: nonNegative(retry.maxRetryAfterMs, "retry.maxRetryAfterMs", 0) }),
    };
    this.#requestTimeoutMs = positiveInteger(
      options.requestTimeoutMs,
      "requestTimeoutMs",
      DEFAULT_REQUEST_TIMEOUT_MS,
    );
    this.#maxAnswerBytes = positiveInteger(
      options.maxAnswerBytes,
      "maxAnswerBytes",
      DEFAULT_MAX_ANSWER_BYTES,
    );
    this.#userAgent = options.userAgent ?? "runflow";
    this.#poll = { ...DEFAULT_POLL_POLICY, ...options.poll };
  }

  /** Submits one billed request. See the module comment for what each outcome promises. */
  async submit(
    modelId: string,
    body: Record<string, unknown>,
    opts: SubmitOptions = {},
  ): Promise<SubmitOutcome> {
    const url = `${this.baseUrl}/v1/models/${encodeModelId(modelId)}`;
    const context: ApiErrorContext = { phase: "submit", modelId };
    const attempted = await this.#call(
      context,
      "POST",
      url,
      JSON.stringify(body),
      opts.signal,
      opts.stopSignal,
    );
    if (attempted.kind === "unknown") return attempted;
    const answer = isRecord(attempted.body) ? attempted.body : {};
    const requestId = answer.request_id;
    if (typeof requestId !== "string" || requestId === "") {
      return {
        kind: "unknown",
        reason: "submit: the API accepted the request but its answer carries no request_id",
      };
    }
    return {
      kind: "submitted",
      requestId,
      statusUrl: trustedUrl(answer.status_url, this.baseUrl, requestUrl(this.baseUrl, requestId, "status")),
      resultUrl: trustedUrl(answer.result_url, this.baseUrl, requestUrl(this.baseUrl, requestId, "result")),
      cancelUrl: trustedUrl(answer.cancel_url, this.baseUrl, requestUrl(this.baseUrl, requestId, "cancel")),
    };
  }

  async status(requestId: string, opts: CallOptions = {}): Promise<RequestStatus> {
    const body = await this.#requestCall("status", "GET", requestId, opts.signal);
    return toRequestStatus(body, requestId);
  }

  /** Always with `include_cost=true`: a terminal result then says what the request cost (API.md). */
  async result(requestId: string, opts: CallOptions = {}): Promise<RequestResult> {
    const url = `${requestUrl(this.baseUrl, requestId, "result")}?include_cost=true`;
    const body = await this.#idempotent({ phase: "result", requestId }, "GET", url, opts.signal);
    return toRequestResult(body, requestId);
  }

  /**
   * The model's price (`GET /v1/models/{id}`), or undefined when the API gives none: the
   * model is unknown there (404) or its answer carries no price.
   */
  async price(modelId: string, opts: CallOptions = {}): Promise<ModelPriceAnswer | undefined> {
    const url = `${this.baseUrl}/v1/models/${encodeModelId(modelId)}`;
    try {
      return toModelPrice(
        await this.#idempotent({ phase: "catalog", modelId }, "GET", url, opts.signal),
        modelId,
      );
    } catch (error) {
      if (error instanceof ModelNotFoundError || (error instanceof ApiError && error.status === 404))
        return undefined;
      throw error;
    }
  }

  /** Cancels a queued request; a running or finished one answers `not_cancellable` and goes on. */
  async cancel(requestId: string, opts: CallOptions = {}): Promise<CancelOutcome> {
    const body = await this.#requestCall("cancel", "POST", requestId, opts.signal);
    return toCancelOutcome(body, requestId);
  }

  /**
   * Polls until the request ends and returns its result. `/status` only says when to look;
   * the outcome is `/result`'s, since `/status` may say completed for a failed request.
   */
  async waitForResult(requestId: string, opts: WaitOptions = {}): Promise<RequestResult> {
    const startedAt = opts.startedAt ?? this.#clock.now();
    const guide = opts.guide;
    // While the duration is unknown: looks at 1 s, 2 s, 2.5 s, 3.1 s … after the submission.
    const guessed = new GuessedLooks(startedAt, this.#poll);
    for (let polls = 0; ; polls++) {
      if (polls === 0 && opts.lookFirst) {
        // No wait: see where the request stands now.
      } else if (guide === undefined) {
        const now = this.#clock.now();
        const delay =
          opts.typicalMs !== undefined && opts.typicalMs > 0
            ? nextPollDelay(polls, this.#poll, {
                typicalMs: opts.typicalMs,
                spreadMs: opts.spreadMs,
                elapsedMs: now - startedAt,
              })
            : guessed.delay(polls, now);
        await this.#sleepUntil(now + delay, opts.signal);
      } else {
        await this.#guidedWait(guide, polls, startedAt, guessed, opts.signal);
      }
      const status = await this.status(requestId, { signal: opts.signal });
      opts.onStatus?.(status);
      // An unknown word may be a terminal state we do not know yet: /result settles it.
      if (isTerminalStatus(status.status) || status.status === "unknown") {
        const result = await this.result(requestId, { signal: opts.signal });
        if (isTerminalResult(result.status)) return result;
      }
    }
  }

  /** Waits until the next poll is due, planning the wait again each time `guide` changes. */
  async #guidedWait(
    guide: PollGuide,
    polls: number,
    startedAt: number,
    guessed: GuessedLooks,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    for (let replanned = false; ; replanned = true) {
      const typicalMs = guide.typicalMs();
      const elapsedMs = this.#clock.now() - startedAt;
      if (typicalMs !== undefined) {
        // Known, as it stays: a plain wait. Learned during this wait: looks when due (at once
        // when already due), not a minimum wait later — it has not looked since.
        const delay = replanned
          ? Math.max(0, typicalMs + this.#poll.marginMs - elapsedMs)
          : nextPollDelay(polls, this.#poll, { typicalMs, spreadMs: guide.spreadMs?.(), elapsedMs });
        if (delay <= 0) return;
        if (!guide.provisional?.()) {
          await this.#sleepUntil(this.#clock.now() + delay, signal);
          return;
        }
        const changed = guide.changed();
        try {
          await this.#sleepUntil(
            this.#clock.now() + delay,
            signal ? AbortSignal.any([signal, changed]) : changed,
          );
          return;
        } catch (error) {
          if (signal?.aborted || !changed.aborted) throw error;
          continue;
        }
      }
      const delay = guide.guessing() ? guessed.delay(polls, this.#clock.now()) : this.#poll.maxMs;
      const changed = guide.changed();
      const waitSignal = signal ? AbortSignal.any([signal, changed]) : changed;
      try {
        await this.#clock.sleep(delay, waitSignal);
        return;
      } catch (error) {
        if (signal?.aborted || !changed.aborted) throw error;
        // Learned meanwhile: plan the wait again from what is known now.
      }
    }
  }

  /**
   * Sleeps until `dueAt` on the clock. A timer may fire a little early by the clock (Node
   * counts its delay from the event loop's time, which lags while a turn is busy): a look
   * before the request's end costs a poll and an overdue wait, so the rest is slept once
   * more. Once only: a clock that does not move (a test's) cannot keep it here.
   */
  async #sleepUntil(dueAt: number, signal: AbortSignal | undefined): Promise<void> {
    await this.#clock.sleep(dueAt - this.#clock.now(), signal);
    const early = dueAt - this.#clock.now();
    if (early > 0) await this.#clock.sleep(early, signal);
  }

  /** The whole catalog (`include_schema=true`), every page. Entries are not shape-checked here. */
  async listModels(opts: { search?: string; signal?: AbortSignal } = {}): Promise<ModelEntry[]> {
    let url: URL | undefined = new URL(`${this.baseUrl}/v1/models`);
    url.searchParams.set("include_schema", "true");
    if (opts.search !== undefined && opts.search !== "") url.searchParams.set("search", opts.search);
    const seen = new Set<string>();
    const entries: ModelEntry[] = [];
    while (url !== undefined && !seen.has(url.href) && seen.size < MAX_CATALOG_PAGES) {
      seen.add(url.href);
      const page = await this.#idempotent({ phase: "catalog" }, "GET", url.href, opts.signal);
      const onPage = catalogEntries(page);
      entries.push(...onPage);
      url = nextCatalogPage(page, url, onPage.length);
      // A next-page link elsewhere would get our token: follow only its path on our origin.
      if (url !== undefined && !isSameOrigin(url.href, this.baseUrl)) {
        url = new URL(`${url.pathname}${url.search}`, this.baseUrl);
      }
    }
    return entries;
  }

  describe(): { baseUrl: string; token: string } {
    return { baseUrl: this.baseUrl, token: "[redacted]" };
  }

  toJSON(): { baseUrl: string; token: string } {
    return this.describe();
  }

  [inspect.custom](): string {
    return `RunComfyClient { baseUrl: ${JSON.stringify(this.baseUrl)}, token: [redacted] }`;
  }

  async #requestCall(
    phase: "status" | "result" | "cancel",
    method: string,
    requestId: string,
    signal?: AbortSignal,
  ) {
    return this.#idempotent({ phase, requestId }, method, requestUrl(this.baseUrl, requestId, phase), signal);
  }

  /** A call that is safe to repeat: it returns the answer's body or throws. */
  async #idempotent(
    context: ApiErrorContext & { phase: Exclude<Phase, "submit"> },
    method: string,
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const attempted = await this.#call(context, method, url, undefined, signal);
    // Only a submission can end `unknown` (retry-policy's table); anything else is a bug there.
    if (attempted.kind === "unknown") throw new ApiError(context, attempted.reason);
    return attempted.body;
  }

  /**
   * One API call with its retries. Throws the typed error when the policy gives up, or the
   * abort reason of `signal` or `stopSignal` (see SubmitOptions) when one ends it between tries.
   */
  async #call(
    context: ApiErrorContext & { phase: Phase },
    method: string,
    url: string,
    body: string | undefined,
    signal: AbortSignal | undefined,
    stopSignal?: AbortSignal,
  ): Promise<Attempted> {
    const waitSignal = stopSignal && signal ? AbortSignal.any([signal, stopSignal]) : (stopSignal ?? signal);
    for (let attempt = 1; ; attempt++) {
      waitSignal?.throwIfAborted();
      const exchange = await this.#exchange(method, url, body, signal);
      if (exchange.kind === "aborted") {
        // The POST may have reached the server: only "unknown" keeps the no-double-billing promise.
        if (context.phase !== "submit") throw exchange.reason;
        return {
          kind: "unknown",
          reason: "submit: interrupted while the submission was in flight; it may have been created",
        };
      }
      const judged = this.#judge(context, exchange, url);
      if (judged.kind === "ok") return judged;
      const { verdict, failure } = judged;
      if (verdict.action === "retry" && attempt < this.#attempts) {
        await this.#clock.sleep(
          backoff(attempt, this.#backoff, this.#random, verdict.retryAfterMs),
          waitSignal,
        );
        continue;
      }
      if (verdict.action === "unknown" && context.phase === "submit") {
        return { kind: "unknown", reason: verdict.reason };
      }
      throw failure;
    }
  }

  /** A usable answer's body, or what the retry policy says about the failure and the error it throws. */
  #judge(
    context: ApiErrorContext & { phase: Phase },
    exchange: Exclude<Exchange, { kind: "aborted" }>,
    url: string,
  ): { kind: "ok"; body: unknown } | { kind: "failed"; verdict: Classification; failure: Error } {
    if (exchange.kind === "answer" && exchange.status >= 200 && exchange.status < 300) {
      try {
        return { kind: "ok", body: JSON.parse(exchange.text) as unknown };
      } catch {
        const problem =
          exchange.text.trim() === ""
            ? `HTTP ${exchange.status} with an empty body`
            : `HTTP ${exchange.status} with a body that is not JSON`;
        return this.#judge(context, { kind: "unusable", status: exchange.status, problem }, url);
      }
    }
    if (exchange.kind === "unusable") {
      const answered = { ...context, status: exchange.status };
      return {
        kind: "failed",
        verdict: classify({ phase: context.phase, unusable: exchange.problem }),
        failure: new UnusableAnswerError(answered, exchange.problem),
      };
    }
    if (exchange.kind === "transport") {
      const verdict = classify({ phase: context.phase, error: exchange.error });
      const target = new URL(url).origin;
      return {
        kind: "failed",
        verdict,
        failure: new TransportError(context, target, transportErrorCode(exchange.error), exchange.error),
      };
    }
    const errorBody = parseErrorBody(exchange.text);
    const message = errorBody.message === undefined ? undefined : this.#redact(errorBody.message);
    const verdict = classify({
      phase: context.phase,
      status: exchange.status,
      headers: exchange.headers,
      errorCode: errorBody.errorCode,
      now: this.#clock.now(),
    });
    const answered = { ...context, status: exchange.status, errorCode: errorBody.errorCode };
    const failure = errorFromAnswer(
      answered,
      { ...errorBody, message, detail: this.#redactDeep(errorBody.detail) },
      verdict.retryAfterMs,
    );
    return { kind: "failed", verdict, failure };
  }

  /** One HTTP exchange, answer body included. */
  async #exchange(
    method: string,
    url: string,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Exchange> {
    let status: number | undefined;
    try {
      const answer = await this.#transport({
        method,
        url,
        headers: this.#headers(url, body !== undefined),
        body,
        signal,
        timeoutMs: this.#requestTimeoutMs,
        // No followRedirects: a redirect could carry the token elsewhere, or replay a POST.
      });
      status = answer.status;
      // Bounded: an endless body is cut at the limit, a stalled one at the transport's idle timeout.
      const text = await readBoundedText(answer, this.#maxAnswerBytes, this.#requestTimeoutMs);
      return { kind: "answer", status: answer.status, headers: answer.headers, text };
    } catch (error) {
      if (signal?.aborted) return { kind: "aborted", reason: signal.reason };
      if (isUnusableAnswer(error) && status !== undefined) {
        return { kind: "unusable", status, problem: `HTTP ${status}, but ${error.message}` };
      }
      return { kind: "transport", error };
    }
  }

  #headers(url: string, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: "application/json", "user-agent": this.#userAgent };
    if (hasBody) headers["content-type"] = "application/json";
    if (isSameOrigin(url, this.baseUrl)) headers.authorization = `Bearer ${this.#token}`;
    return headers;
  }

  #redact(text: string): string {
    return text.split(this.#token).join("[redacted]");
  }

  #redactDeep(value: unknown): unknown {
    if (typeof value === "string") return this.#redact(value);
    if (Array.isArray(value)) return value.map((item) => this.#redactDeep(item));
    if (isRecord(value)) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.#redactDeep(item)]));
    }
    return value;
  }
}
