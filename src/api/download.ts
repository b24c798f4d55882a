/**
 * Downloads an output file: streamed to a temporary file beside the destination, hashed on
 * the way, length-checked, fsynced, then renamed into place — so the destination is either
 * absent or complete, never half written. Retried on 429 / 5xx / transport errors.
 *
 * No Authorization header is ever sent: output hosts are not the API, and even an output
 * served from the API's own host gets no token (RunComfy's nodes do the same).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { systemClock, type Clock, type Random } from "../util/clock.js";
import { DownloadError } from "./errors.js";
import { isOk, undiciTransport, type HeaderReader, type HttpAnswer, type HttpTransport } from "./http.js";
import {
  backoff,
  classify,
  transportErrorCode,
  type BackoffPolicy,
  type Classification,
} from "./retry-policy.js";

export interface DownloadOptions {
  /** Default undici's `request` (http.ts). */
  transport?: HttpTransport;
  clock?: Clock;
  random?: Random;
  signal?: AbortSignal;
  /** Every try counts, the first included (default 5). */
  attempts?: number;
  /** Refuse a file larger than this many bytes. */
  maxBytes?: number;
  backoff?: BackoffPolicy;
}

export interface DownloadedFile {
  path: string;
  bytes: number;
  sha256: string;
  contentType?: string;
}

const DEFAULT_ATTEMPTS = 5;
/** The longest wait for the answer, and for each pause in a file's bytes (undici's default). */
const DOWNLOAD_TIMEOUT_MS = 300_000;
const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

/** The URL as messages show it: signed query strings are credentials of their own. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(an invalid URL)";
  }
}

/** A failure of one attempt, with the policy's verdict on it. */
class AttemptFailed extends Error {
  constructor(
    readonly verdict: Classification,
    readonly failure: DownloadError,
  ) {
    super(failure.message);
  }
}

export async function downloadFile(
  url: string,
  destination: string,
  opts: DownloadOptions = {},
): Promise<DownloadedFile> {
  const clock = opts.clock ?? systemClock;
  const attempts = opts.attempts ?? DEFAULT_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await attemptDownload(url, destination, opts, clock);
    } catch (error) {
      if (!(error instanceof AttemptFailed)) throw error;
      if (error.verdict.action !== "retry" || attempt >= attempts) throw error.failure;
      const wait = backoff(
        attempt,
        opts.backoff ?? DEFAULT_BACKOFF,
        opts.random ?? Math.random,
        error.verdict.retryAfterMs,
      );
      await clock.sleep(wait, opts.signal);
    }
  }
}

async function attemptDownload(
  url: string,
  destination: string,
  opts: DownloadOptions,
  clock: Clock,
): Promise<DownloadedFile> {
  const shown = displayUrl(url);
  // The caller's abort passes through as it is; anything else is judged by the policy.
  const transportFailure = (error: unknown): unknown => {
    if (opts.signal?.aborted) return error;
    const code = transportErrorCode(error);
    return new AttemptFailed(
      classify({ phase: "download", error }),
      new DownloadError(shown, code ?? "the connection failed", { cause: error }),
    );
  };

  let response: HttpAnswer;
  try {
    response = await (opts.transport ?? undiciTransport)({
      method: "GET",
      url,
      // `identity`, so Content-Length is the file's own size and can be checked.
      headers: { "accept-encoding": "identity" },
      signal: opts.signal,
      timeoutMs: DOWNLOAD_TIMEOUT_MS,
      followRedirects: true,
    });
  } catch (error) {
    throw transportFailure(error);
  }
  if (!isOk(response)) {
    await response.discard();
    const verdict = classify({
      phase: "download",
      status: response.status,
      headers: response.headers,
      now: clock.now(),
    });
    throw new AttemptFailed(
      verdict,
      new DownloadError(shown, `HTTP ${response.status}`, { status: response.status }),
    );
  }

  const declared = declaredLength(response.headers);
  if (opts.maxBytes !== undefined && declared !== undefined && declared > opts.maxBytes) {
    await response.discard();
    throw tooLarge(shown, declared, opts.maxBytes);
  }

  const temporary = `${destination}.part-${randomBytes(6).toString("hex")}`;
  const file = await openInFolder(temporary);
  let closed = false;
  try {
    const hash = createHash("sha256");
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        bytes += chunk.byteLength;
        if (opts.maxBytes !== undefined && bytes > opts.maxBytes) throw tooLarge(shown, bytes, opts.maxBytes);
        hash.update(chunk);
        await file.write(chunk);
      }
    } catch (error) {
      if (error instanceof DownloadError) throw error;
      throw transportFailure(error);
    }
    if (declared !== undefined && bytes !== declared) {
      // undici's own code for this condition, so the policy judges it like a cut connection.
      const cut = Object.assign(new Error(`received ${bytes} of the ${declared} bytes announced`), {
        code: "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
      });
      throw new AttemptFailed(
        classify({ phase: "download", error: cut }),
        new DownloadError(shown, cut.message, { cause: cut }),
      );
    }
    await file.sync();
    await file.close();
    closed = true;
    await rename(temporary, destination);
    await syncDirectory(path.dirname(destination));
    const contentType = response.headers.get("content-type");
    return { path: destination, bytes, sha256: hash.digest("hex"), ...(contentType ? { contentType } : {}) };
  } catch (error) {
    if (!closed) await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}

// Folders this process has made (or found): the steps of a job write into one folder, so
// a chain needs one mkdir per job instead of one per output file.
const madeFolders = new Set<string>();

/** Opens a new file for writing, making its folder first unless it was made before (and still exists). */
async function openInFolder(file: string) {
  const folder = path.dirname(file);
  if (madeFolders.has(folder)) {
    try {
      return await open(file, "w");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      madeFolders.delete(folder);
    }
  }
  await mkdir(folder, { recursive: true });
  madeFolders.add(folder);
  return open(file, "w");
}

/** Content-Length, when it states the size of the file itself (no content encoding). */
function declaredLength(headers: HeaderReader): number | undefined {
  const encoding = headers.get("content-encoding");
  if (encoding !== null && encoding.toLowerCase() !== "identity") return undefined;
  const value = headers.get("content-length");
  return value !== null && /^\d+$/.test(value) ? Number(value) : undefined;
}

function tooLarge(shown: string, bytes: number, maxBytes: number): DownloadError {
  return new DownloadError(
    shown,
    `the file is larger than the ${maxBytes} bytes allowed (${bytes} bytes or more)`,
  );
}

/** Makes the rename itself durable. Not every platform can open a directory: best effort. */
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability of the rename is a bonus; the file's own content was synced above.
  }
}
