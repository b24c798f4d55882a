/**
 * Downloads an output file: streamed to a temporary file beside the destination, hashed on
 * the way, length-checked, fsynced, its size on disk checked, then renamed into
 * place — so the destination is either absent or complete, never half written. Retried on
 * 429 / 5xx / transport errors.
 *
 * The file host is not trusted (docs/security.md): a file is bounded in size (maxBytes), a
 * body that stops moving is given up (idleTimeoutMs), and a file that does not look like the
 * media its name claims (an HTML error page saved as `.mp4`) is refused. A full or read-only
 * disk is said so, and is never retried.
 *
 * No Authorization header is ever sent: output hosts are not the API, and even an output
 * served from the API's own host gets no token (RunComfy's nodes do the same).
 */
import { createHash } from "node:crypto";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { UsageError } from "../errors.js";
import { systemClock, type Clock, type Random } from "../util/clock.js";
import { DiskError, onDisk } from "../util/disk-errors.js";
import { forgetFolder, newPartPath, partFinished, prepareFolder } from "../util/part-files.js";
import { DownloadError } from "./errors.js";
import { isOk, undiciTransport, type HeaderReader, type HttpAnswer, type HttpTransport } from "./http.js";
import { mediaMismatch, SIGNATURE_BYTES } from "./media-signature.js";
import {
  backoff,
  classify,
  transportErrorCode,
  type BackoffPolicy,
  type Classification,
} from "./retry-policy.js";

export { DiskError };

export interface DownloadOptions {
  /** Default undici's `request` (http.ts). */
  transport?: HttpTransport;
  clock?: Clock;
  random?: Random;
  signal?: AbortSignal;
  /** Every try counts, the first included (default 5). */
  attempts?: number;
  /** Refuse a file larger than this many bytes (default DEFAULT_MAX_DOWNLOAD_BYTES). */
  maxBytes?: number;
  /** Give up on an answer that sends nothing for this long (default DEFAULT_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  backoff?: BackoffPolicy;
}

export interface DownloadedFile {
  path: string;
  bytes: number;
  sha256: string;
  contentType?: string;
}

const DEFAULT_ATTEMPTS = 5;
/**
 * The largest output file accepted: generous (a long 4K video is a few hundred MB) but
 * finite, so an endless answer cannot fill the disk.
 */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 4 * 1024 ** 3;
/** The environment variable that sets another limit, in MB (1,000,000 bytes). */
export const MAX_DOWNLOAD_VARIABLE = "RUNFLOW_MAX_DOWNLOAD_MB";
/** The longest wait for the answer's headers, and for each pause in its bytes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
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

/** A pause in the answer longer than the idle timeout. */
class IdleTimeout extends Error {
  constructor(readonly ms: number) {
    super(`the file host sent nothing for ${formatSeconds(ms)} (idle timeout)`);
  }
}

function formatSeconds(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

async function attemptDownload(
  url: string,
  destination: string,
  opts: DownloadOptions,
  clock: Clock,
): Promise<DownloadedFile> {
  const shown = displayUrl(url);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  // The caller's abort passes through as it is; anything else is judged by the policy.
  const transportFailure = (error: unknown): unknown => {
    if (opts.signal?.aborted) return error;
    const code = transportErrorCode(error);
    if (code === "TimeoutError") {
      // Retried like a cut connection, and said as what it is.
      const stalled = Object.assign(new IdleTimeout(idleMs), { code: "UND_ERR_BODY_TIMEOUT" });
      return new AttemptFailed(
        classify({ phase: "download", error: stalled }),
        new DownloadError(shown, stalled.message, { cause: error }),
      );
    }
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
      // undici's header and body timeouts are idle timeouts: the wait for the headers, and
      // each pause between bytes of the body (a `fetch` transport makes it the whole exchange).
      timeoutMs: idleMs,
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
  if (declared !== undefined && declared > maxBytes) {
    await response.discard();
    throw tooLarge(shown, declared, maxBytes);
  }

  const folder = path.dirname(destination);
  const temporary = newPartPath(destination);
  let file: FileHandle;
  try {
    file = await onDisk(folder, () => openInFolder(temporary));
  } catch (error) {
    partFinished(temporary);
    throw error;
  }
  let closed = false;
  try {
    const hash = createHash("sha256");
    const head = Buffer.alloc(SIGNATURE_BYTES);
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        if (bytes + chunk.byteLength > maxBytes) throw tooLarge(shown, bytes + chunk.byteLength, maxBytes);
        if (bytes < SIGNATURE_BYTES) head.set(chunk.subarray(0, SIGNATURE_BYTES - bytes), bytes);
        await onDisk(folder, () => writeFully(file, chunk));
        hash.update(chunk);
        bytes += chunk.byteLength;
      }
    } catch (error) {
      if (error instanceof DownloadError || error instanceof DiskError) throw error;
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
    const contentType = response.headers.get("content-type") ?? undefined;
    const mismatch = mediaMismatch(path.extname(destination), head.subarray(0, bytes), bytes, contentType);
    if (mismatch !== undefined) throw new DownloadError(shown, mismatch);
    const sha256 = hash.digest("hex");
    await onDisk(folder, () => file.sync());
    // What the file system holds, not what was handed to it, is what gets recorded. (Reading
    // the bytes back to hash them again would read the page cache, the same bytes the writes
    // just put there: it would cost a read of every file and check nothing more.)
    const stored = await onDisk(folder, () => file.stat());
    if (stored.size !== bytes) {
      throw new DiskError(
        `${temporary} holds ${stored.size} bytes after writing the ${bytes} received; the disk may be failing`,
      );
    }
    await onDisk(folder, () => file.close());
    closed = true;
    await onDisk(folder, () => rename(temporary, destination));
    await syncDirectory(folder);
    return { path: destination, bytes, sha256, ...(contentType ? { contentType } : {}) };
  } catch (error) {
    if (!closed) await file.close().catch(() => undefined);
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  } finally {
    partFinished(temporary);
  }
}

/** RUNFLOW_MAX_DOWNLOAD_MB in bytes, else DEFAULT_MAX_DOWNLOAD_BYTES. */
export function maxBytesFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[MAX_DOWNLOAD_VARIABLE]?.trim();
  if (text === undefined || text === "") return DEFAULT_MAX_DOWNLOAD_BYTES;
  const megabytes = Number(text);
  if (!Number.isFinite(megabytes) || megabytes <= 0) {
    throw new UsageError(
      `Expected \`${MAX_DOWNLOAD_VARIABLE}\` to be a number of megabytes above 0, got \`${text}\``,
    );
  }
  return Math.floor(megabytes * 1_000_000);
}

/** Writes all of `chunk`: a write may take fewer bytes than given (a disk filling up), and the rest must follow or fail. */
async function writeFully(file: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.byteLength - offset);
    if (bytesWritten <= 0) {
      throw Object.assign(new Error("the file system took none of the bytes"), { code: "ENOSPC" });
    }
    offset += bytesWritten;
  }
}

/** Opens a new file for writing, preparing its folder first unless done before (and still there). */
async function openInFolder(file: string): Promise<FileHandle> {
  const folder = path.dirname(file);
  try {
    await prepareFolder(folder);
    return await open(file, "w");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    forgetFolder(folder);
    await prepareFolder(folder);
    return open(file, "w");
  }
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
