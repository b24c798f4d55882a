/**
 * Reading an API answer's body within limits, so one hostile or broken answer cannot cost
 * unbounded memory or hang a call: at most `maxBytes` (an endless 200 body once took runflow
 * to 6.8 GB), and no pause longer than the transport's timeout between two pieces of it (a
 * body that stops moving; http.ts gives every transport that idle timeout). Each is thrown
 * as an error that says which limit was hit, so callers can tell it from a lost connection.
 */
import type { HttpAnswer } from "./http.js";

/** The answer's body grew past the limit. */
export class AnswerTooLargeError extends Error {
  readonly code = "ANSWER_TOO_LARGE";
  constructor(readonly maxBytes: number) {
    super(`the answer was larger than ${formatBytes(maxBytes)}`);
    this.name = "AnswerTooLargeError";
  }
}

/** The answer's headers arrived, then its body stopped arriving. */
export class AnswerStalledError extends Error {
  readonly code = "ANSWER_STALLED";
  constructor(readonly idleMs: number) {
    super(`the answer stopped arriving for ${Math.round(idleMs / 100) / 10} s`);
    this.name = "AnswerStalledError";
  }
}

export function isUnusableAnswer(error: unknown): error is AnswerTooLargeError | AnswerStalledError {
  return error instanceof AnswerTooLargeError || error instanceof AnswerStalledError;
}

function formatBytes(bytes: number): string {
  const mb = 1024 * 1024;
  return bytes >= mb && bytes % mb === 0 ? `${bytes / mb} MB` : `${bytes} bytes`;
}

function isTimeout(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === "TimeoutError";
}

/**
 * The whole body as UTF-8 text, or a throw: AnswerTooLargeError, AnswerStalledError (the
 * transport's idle timeout, `idleMs`, fired while the body was being read), or the
 * transport's own error (a connection cut mid-body). Leaving early closes the body.
 */
export async function readBoundedText(answer: HttpAnswer, maxBytes: number, idleMs: number): Promise<string> {
  const declared = Number(answer.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await answer.discard();
    throw new AnswerTooLargeError(maxBytes);
  }
  try {
    // A declared length within the limit is held to by the HTTP parser: read it whole, as before.
    if (Number.isFinite(declared)) return await answer.text();
    return await readChunks(answer.body, maxBytes);
  } catch (error) {
    throw isTimeout(error) ? new AnswerStalledError(idleMs) : error;
  }
}

/** A body of unknown length, chunk by chunk up to the limit. */
async function readChunks(body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Throwing out of the loop ends the iteration, which closes the body (and its connection).
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new AnswerTooLargeError(maxBytes);
    chunks.push(chunk);
  }
  const only = chunks.length === 1 ? chunks[0]! : undefined;
  // One chunk is decoded in place, without a copy.
  if (only) return Buffer.from(only.buffer, only.byteOffset, only.byteLength).toString("utf8");
  return Buffer.concat(chunks, size).toString("utf8");
}
