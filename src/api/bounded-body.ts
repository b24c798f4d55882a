/**
 * Reading an API answer's body with two limits, so one hostile or broken answer cannot cost
 * unbounded memory or hang a call: at most `maxBytes` (an endless 200 body once took runflow
 * to 6.8 GB), and no pause longer than `idleMs` between two pieces of it (a body that stops
 * moving). Either limit aborts the exchange through `abort`, which the transport was given
 * as its signal, so the connection is closed rather than drained.
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
  return bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0
    ? `${bytes / (1024 * 1024)} MB`
    : `${bytes} bytes`;
}

export interface BodyLimits {
  maxBytes: number;
  idleMs: number;
  /** Aborts the exchange (the transport's signal) with the limit that was hit. */
  abort: (reason: Error) => void;
}

/** The whole body as UTF-8 text, or a throw: AnswerTooLargeError, AnswerStalledError, or the transport's error. */
export async function readBoundedText(answer: HttpAnswer, limits: BodyLimits): Promise<string> {
  const declared = Number(answer.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    const error = new AnswerTooLargeError(limits.maxBytes);
    limits.abort(error);
    throw error;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  let hit: Error | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stop = (error: Error) => {
    hit ??= error;
    limits.abort(error);
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stop(new AnswerStalledError(limits.idleMs)), limits.idleMs);
  };
  try {
    arm();
    for await (const chunk of answer.body) {
      size += chunk.byteLength;
      if (size > limits.maxBytes) {
        stop(new AnswerTooLargeError(limits.maxBytes));
        break;
      }
      chunks.push(chunk);
      arm();
    }
  } catch (error) {
    // The transport's own idle timeout (undici's bodyTimeout) says the same as ours.
    if (hit === undefined && (error as { name?: unknown } | null)?.name === "TimeoutError") {
      hit = new AnswerStalledError(limits.idleMs);
    }
    throw hit ?? error;
  } finally {
    clearTimeout(timer);
  }
  if (hit) throw hit;
  return Buffer.concat(chunks).toString("utf8");
}
