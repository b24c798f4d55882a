/**
 * Preflight of media inputs (SPEC §4): measures what a model's `validations` rules need —
 * the file size and the pixel dimensions — from as few bytes as possible, then evaluates
 * the rules. The API token is never sent here: media hosts are not the API.
 */
import { STATUS_CODES } from "node:http";
import { imageSize } from "image-size";
import { isOk, undiciTransport, type HttpAnswer, type HttpTransport } from "./http.js";
import { transportErrorCode } from "./retry-policy.js";
import { MediaUnreachableError } from "../models/errors.js";
import {
  checkMediaUrl,
  evaluateMediaRules,
  factsNeededBy,
  mediaRulesOf,
  mediaUrlFieldsOf,
} from "../models/media-rules.js";
import type { InputIssue, MediaFacts, ModelEntry } from "../models/types.js";

export interface MediaNeeds {
  size: boolean;
  dimensions: boolean;
}

export interface ProbeMediaOptions {
  /** How the probes reach the network (default undici, api/http.ts); apply adds retries. */
  transport?: HttpTransport;
  signal?: AbortSignal;
  /** Bound on the whole probe of one URL (default 15 s). */
  timeoutMs?: number;
}

/** Image headers fit in the first 64 KiB, except JPEGs carrying a big EXIF block or thumbnail. */
const HEADER_BYTES = 64 * 1024;
/** The one wider read for those; never more, so a large file is never downloaded whole. */
const WIDE_HEADER_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 15_000;

interface Probe {
  url: string;
  transport: HttpTransport;
  signal: AbortSignal;
  timeoutMs: number;
}

/**
 * Only these headers are ever sent. `identity` keeps Content-Length the size of the file
 * itself rather than of a compressed transfer.
 */
function probeHeaders(range?: string): Record<string, string> {
  return range ? { "accept-encoding": "identity", range } : { "accept-encoding": "identity" };
}

async function send(probe: Probe, method: "GET" | "HEAD", range?: string): Promise<HttpAnswer> {
  try {
    return await probe.transport({
      method,
      url: probe.url,
      headers: probeHeaders(range),
      followRedirects: true,
      signal: probe.signal,
      timeoutMs: probe.timeoutMs,
    });
  } catch (error) {
    throw unreachable(probe, error);
  }
}

function unreachable(probe: Probe, error: unknown): Error {
  if (error instanceof Error && error.name === "TimeoutError") {
    return new MediaUnreachableError(probe.url, `no answer within ${probe.timeoutMs / 1000} s`, {
      cause: error,
      noAnswer: true,
    });
  }
  // The caller's own abort is not a problem of the medium: let it through unchanged.
  if (error instanceof Error && error.name === "AbortError") return error;
  const reason = transportErrorCode(error) ?? (error instanceof Error ? error.message : String(error));
  return new MediaUnreachableError(probe.url, reason, { cause: error, noAnswer: true });
}

function failure(probe: Probe, answer: HttpAnswer): MediaUnreachableError {
  const phrase = STATUS_CODES[answer.status];
  return new MediaUnreachableError(probe.url, `HTTP ${answer.status}${phrase ? ` ${phrase}` : ""}`);
}

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** The whole file's size from `Content-Range: bytes 0-65535/1234567` (a 416 puts `*` for the range). */
function totalFromContentRange(value: string | null): number | undefined {
  const match = value === null ? null : /\/(\d+)\s*$/.exec(value);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** The size of the whole file as this answer to a GET tells it, if it does. */
function sizeFromGet(response: HttpAnswer): number | undefined {
  if (response.status === 206 || response.status === 416) {
    return totalFromContentRange(response.headers.get("content-range"));
  }
  // A server that ignores Range answers 200 with the whole file's length.
  return parseLength(response.headers.get("content-length"));
}

/** Reads at most `limit` bytes of the body and drops the rest unread. */
async function readUpTo(response: HttpAnswer, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let received = 0;
  // Leaving the loop early closes the body: the rest is never read.
  for await (const chunk of response.body) {
    chunks.push(chunk);
    received += chunk.byteLength;
    if (received >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

interface FirstBytes {
  bytes: Uint8Array;
  /** Whether the file goes on beyond `bytes`. */
  truncated: boolean;
  sizeBytes: number | undefined;
  contentType: string | undefined;
}

async function firstBytes(probe: Probe, limit: number): Promise<FirstBytes> {
  const response = await send(probe, "GET", `bytes=0-${limit - 1}`);
  const sizeBytes = sizeFromGet(response);
  const contentType = response.headers.get("content-type") ?? undefined;
  // 416: the file is shorter than the range asked for, i.e. empty.
  if (response.status === 416) {
    await response.discard();
    return { bytes: new Uint8Array(), truncated: false, sizeBytes, contentType };
  }
  if (!isOk(response)) {
    await response.discard();
    throw failure(probe, response);
  }
  const bytes = await readUpTo(response, limit);
  const truncated = sizeBytes === undefined ? bytes.byteLength >= limit : sizeBytes > bytes.byteLength;
  return { bytes, truncated, sizeBytes, contentType };
}

function dimensionsOf(bytes: Uint8Array): { width: number; height: number } | undefined {
  try {
    const { width, height, type } = imageSize(bytes);
    // TGA has no magic number, so image-size "recognises" arbitrary bytes (a video's) as one.
    if (type === "tga" || !(width > 0 && height > 0)) return undefined;
    return { width, height };
  } catch {
    // Not an image format image-size reads, or its header is cut off.
    return undefined;
  }
}

/** Size from a HEAD; when HEAD is refused or says nothing, from a one-byte ranged GET. */
async function sizeOf(probe: Probe): Promise<number | undefined> {
  const head = await send(probe, "HEAD");
  await head.discard();
  const fromHead = isOk(head) ? parseLength(head.headers.get("content-length")) : undefined;
  if (fromHead !== undefined) return fromHead;
  const get = await send(probe, "GET", "bytes=0-0");
  await get.discard();
  if (!isOk(get) && get.status !== 416) throw failure(probe, get);
  return sizeFromGet(get);
}

/**
 * Measures what `need` asks of the medium at `url`. Throws MediaUnreachableError when the
 * host cannot be reached or answers with an error status; a fact it could not learn is
 * left undefined. Never sends an Authorization header, and reads at most 1 MiB.
 */
export async function probeMedia(
  url: string,
  need: MediaNeeds,
  options: ProbeMediaOptions = {},
): Promise<MediaFacts> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const probe: Probe = {
    url,
    transport: options.transport ?? undiciTransport,
    signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    timeoutMs,
  };
  const facts: MediaFacts = { url };
  if (need.dimensions) {
    let head = await firstBytes(probe, HEADER_BYTES);
    let dimensions = dimensionsOf(head.bytes);
    if (!dimensions && head.truncated) {
      head = await firstBytes(probe, WIDE_HEADER_BYTES);
      dimensions = dimensionsOf(head.bytes);
    }
    facts.width = dimensions?.width;
    facts.height = dimensions?.height;
    facts.sizeBytes = head.sizeBytes;
    facts.contentType = head.contentType;
  }
  if (need.size && facts.sizeBytes === undefined) facts.sizeBytes = await sizeOf(probe);
  return facts;
}

export interface CheckMediaInputOptions extends ProbeMediaOptions {
  /** Fields whose value is not known yet (an earlier step's output): not checked now. */
  deferred?: ReadonlySet<string>;
  /**
   * Probes shared across calls (e.g. one per `apply`, where many items use the same still);
   * by default each call probes every distinct URL once.
   */
  cache?: Map<string, Promise<MediaFacts>>;
}

/**
 * Checks the media inputs of `value` (an input already through validateModelInput): the URL
 * scheme of every media field, and each field's `validations` rules on the medium behind it,
 * measuring only what the rules need. Problems come back as issues; only the caller's abort
 * is thrown.
 */
export async function checkMediaInput(
  entry: ModelEntry,
  value: Record<string, unknown>,
  options: CheckMediaInputOptions = {},
): Promise<InputIssue[]> {
  const rulesByField = mediaRulesOf(entry);
  const cache = options.cache ?? new Map<string, Promise<MediaFacts>>();
  const issues: InputIssue[] = [];
  const checks: Promise<InputIssue[]>[] = [];

  for (const field of mediaUrlFieldsOf(entry)) {
    const url = value[field];
    if (options.deferred?.has(field) || typeof url !== "string") continue;
    const problem = checkMediaUrl(url);
    if (problem) {
      issues.push({ field, kind: "media_url", message: `input.${field}: ${problem}` });
      continue;
    }
    const rules = rulesByField.get(field);
    if (!rules) continue;
    const need = factsNeededBy(rules);
    const key = `${need.size ? "s" : "-"}${need.dimensions ? "d" : "-"} ${url}`;
    let facts = cache.get(key);
    if (!facts) {
      facts = probeMedia(url, need, options);
      cache.set(key, facts);
    }
    checks.push(
      facts.then(
        (measured) => evaluateMediaRules(field, rules, measured),
        (error: unknown) => {
          if (!(error instanceof MediaUnreachableError)) throw error;
          const issue: InputIssue = {
            field,
            kind: "media_unreachable",
            message: `input.${field}: ${error.message}`,
          };
          if (error.noAnswer) issue.unreachableOrigin = new URL(url).origin;
          return [issue];
        },
      ),
    );
  }
  for (const fieldIssues of await Promise.all(checks)) issues.push(...fieldIssues);
  return issues;
}
