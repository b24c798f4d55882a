/**
 * What the API's successful answers mean, normalized into runflow's types. The two status
 * vocabularies differ (`/status` says `completed`, `/result` says `succeeded`); both
 * spellings of cancelled are accepted; a word we do not know is `unknown`, never success.
 */
import { microsFromUsd } from "../cost/money.js";
import type { ModelEntry } from "../models/types.js";

export type SubmitOutcome =
  | { kind: "submitted"; requestId: string; statusUrl: string; resultUrl: string; cancelUrl: string }
  /** The request may or may not exist (lost answer, 5xx): report it, never resubmit it blindly. */
  | { kind: "unknown"; reason: string };

export const STATUS_STATES = [
  "in_queue",
  "in_progress",
  "completed",
  "failed",
  "cancelled",
  "unknown",
] as const;
export type StatusState = (typeof STATUS_STATES)[number];

export interface RequestStatus {
  requestId: string;
  status: StatusState;
  /** 1 = next to start; only while in_queue. */
  queuePosition?: number;
  /** The word the API used. */
  raw: string;
}

export const RESULT_STATES = [
  "in_queue",
  "in_progress",
  "succeeded",
  "failed",
  "cancelled",
  "unknown",
] as const;
export type ResultState = (typeof RESULT_STATES)[number];

export interface RequestResult {
  requestId: string;
  status: ResultState;
  /** Media by name (`video`, `image`, `videos`, `images`); only when succeeded. */
  output?: Record<string, unknown>;
  /** A succeeded result's `output` that is not an object (a bare string …): kept to say what came. */
  strayOutput?: unknown;
  error?: string;
  createdAt?: string;
  finishedAt?: string;
  /** What the request cost in micro-dollars (`?include_cost=true`); absent when the API reported none. */
  costMicros?: number;
}

/** A model's price (`GET /v1/models/{id}`): `micros` USD-millionths per second of output, or per output. */
export interface ModelPriceAnswer {
  modelId: string;
  micros: number;
  unit: "second" | "output";
  note?: string;
}

export interface CancelOutcome {
  requestId: string;
  /** `not_cancellable`: the request was already running or finished; nothing changed. */
  outcome: "cancelled" | "not_cancellable";
  status: string;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

const STATUS_WORDS: Readonly<Record<string, StatusState>> = {
  in_queue: "in_queue",
  in_progress: "in_progress",
  completed: "completed",
  succeeded: "completed",
  failed: "failed",
  cancelled: "cancelled",
  canceled: "cancelled",
};

const RESULT_WORDS: Readonly<Record<string, ResultState>> = {
  in_queue: "in_queue",
  in_progress: "in_progress",
  succeeded: "succeeded",
  completed: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
  canceled: "cancelled",
};

function word(value: unknown): string {
  return typeof value === "string" ? value.trim().toLowerCase() : "";
}

export function isTerminalStatus(status: StatusState): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}

export function isTerminalResult(status: ResultState): boolean {
  return status === "succeeded" || status === "failed" || status === "cancelled";
}

export function toRequestStatus(body: unknown, requestId: string): RequestStatus {
  const data = isRecord(body) ? body : {};
  const raw = typeof data.status === "string" ? data.status : "";
  const status: RequestStatus = {
    requestId: text(data.request_id) ?? requestId,
    status: STATUS_WORDS[word(raw)] ?? "unknown",
    raw,
  };
  const position = data.queue_position;
  if (typeof position === "number" && Number.isFinite(position)) status.queuePosition = position;
  return status;
}

/** `error` arrives as a string or as `{message}`, depending on the model. */
function errorText(value: unknown): string | undefined {
  if (typeof value === "string") return value.trim() === "" ? undefined : value;
  if (isRecord(value)) return text(value.message) ?? text(value.error_message) ?? JSON.stringify(value);
  return undefined;
}

export function toRequestResult(body: unknown, requestId: string): RequestResult {
  const data = isRecord(body) ? body : {};
  const result: RequestResult = {
    requestId: text(data.request_id) ?? requestId,
    status: RESULT_WORDS[word(data.status)] ?? "unknown",
  };
  if (result.status === "succeeded" && isRecord(data.output)) result.output = data.output;
  else if (result.status === "succeeded" && data.output !== undefined) result.strayOutput = data.output;
  const error = errorText(data.error);
  if (error !== undefined) result.error = error;
  const createdAt = text(data.created_at);
  if (createdAt !== undefined) result.createdAt = createdAt;
  const finishedAt = text(data.finished_at);
  if (finishedAt !== undefined) result.finishedAt = finishedAt;
  // Only a terminal result's cost is what the request cost; a missing or odd one is unknown, never 0.
  const costMicros = isTerminalResult(result.status) ? microsFromUsd(data.cost) : undefined;
  if (costMicros !== undefined) result.costMicros = costMicros;
  return result;
}

/** A price answer, or undefined when it carries no usable price (a model the API gives none for). */
export function toModelPrice(body: unknown, modelId: string): ModelPriceAnswer | undefined {
  const data = isRecord(body) ? body : {};
  const micros = microsFromUsd(data.base_price_usd);
  const unit = word(data.price_unit);
  if (micros === undefined || (unit !== "second" && unit !== "output")) return undefined;
  const price: ModelPriceAnswer = { modelId: text(data.model_id) ?? modelId, micros, unit };
  const note = text(data.pricing_note);
  if (note !== undefined) price.note = note;
  return price;
}

export function toCancelOutcome(body: unknown, requestId: string): CancelOutcome {
  const data = isRecord(body) ? body : {};
  const cancelled = word(data.outcome) === "cancelled" || word(data.outcome) === "canceled";
  return {
    requestId: text(data.request_id) ?? requestId,
    outcome: cancelled ? "cancelled" : "not_cancellable",
    status: typeof data.status === "string" ? data.status : "",
  };
}

/**
 * The server-measured duration of a finished request (`finished_at − created_at`), the
 * best input for the poll schedule's `typicalMs`: it does not include our own polling delay.
 */
export function serverDurationMs(result: RequestResult): number | undefined {
  if (result.createdAt === undefined || result.finishedAt === undefined) return undefined;
  const ms = Date.parse(result.finishedAt) - Date.parse(result.createdAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** The entries of one catalog page: objects with a string `model_id`, under `models` (or `data`/`items`). */
export function catalogEntries(page: unknown): ModelEntry[] {
  const list = Array.isArray(page)
    ? page
    : isRecord(page)
      ? (page.models ?? page.data ?? page.items)
      : undefined;
  if (!Array.isArray(list)) return [];
  // Shape-checked by the caller (parseModelEntry), which reports a bad entry by name.
  return list.filter((item): item is ModelEntry => isRecord(item) && typeof item.model_id === "string");
}

function wholeNumber(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/**
 * The URL of the catalog page after `current`, or undefined at the end. Accepts the paging
 * shapes catalogs use: `next_page` (a URL or a page number), `next_cursor`/`cursor`,
 * `page`/`total_pages`, and `offset`/`limit`/`total` (what RunComfy's CLI sends).
 */
export function nextCatalogPage(page: unknown, current: URL, entriesOnPage: number): URL | undefined {
  if (!isRecord(page) || entriesOnPage === 0) return undefined;
  const next = new URL(current);
  const nextPage = page.next_page;
  if (typeof nextPage === "string" && nextPage !== "") return new URL(nextPage, current);
  if (wholeNumber(nextPage) !== undefined) {
    next.searchParams.set("page", String(nextPage));
    return next;
  }
  const cursor = text(page.next_cursor) ?? text(page.cursor);
  if (cursor !== undefined) {
    next.searchParams.set("cursor", cursor);
    return next;
  }
  const pageNumber = wholeNumber(page.page);
  const totalPages = wholeNumber(page.total_pages);
  if (pageNumber !== undefined && totalPages !== undefined) {
    if (pageNumber >= totalPages) return undefined;
    next.searchParams.set("page", String(pageNumber + 1));
    return next;
  }
  const total = wholeNumber(page.total);
  const offset = wholeNumber(page.offset);
  if (total !== undefined && offset !== undefined && offset + entriesOnPage < total) {
    next.searchParams.set("offset", String(offset + entriesOnPage));
    const limit = wholeNumber(page.limit);
    if (limit !== undefined) next.searchParams.set("limit", String(limit));
    return next;
  }
  return undefined;
}
