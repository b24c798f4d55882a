/** What a handler answers, before the wire: handlers stay free of sockets and streams. */
import type { VirtualFile } from "./virtual-file.js";

export type Reply =
  | { type: "json"; status: number; body: unknown; headers?: Record<string, string> }
  | { type: "text"; status: number; body: string; contentType: string; headers?: Record<string, string> }
  | { type: "file"; file: VirtualFile };

/** RunComfy's error body: `{error_code, error_message, detail?}`. */
export function apiError(status: number, errorCode: number, message: string, detail?: unknown): Reply {
  const body: Record<string, unknown> = { error_code: errorCode, error_message: message };
  if (detail !== undefined) body.detail = detail;
  return { type: "json", status, body };
}

/** `reply` with extra headers (JSON and text replies; a file's headers are its own). */
export function withHeaders(reply: Reply, headers: Record<string, string>): Reply {
  return reply.type === "file" ? reply : { ...reply, headers: { ...reply.headers, ...headers } };
}

export function json(status: number, body: unknown): Reply {
  return { type: "json", status, body };
}

export function text(status: number, body: string): Reply {
  return { type: "text", status, body, contentType: "text/plain; charset=utf-8" };
}

/** The error codes RunComfy documents, and ours (marked) where it documents none. */
export const ErrorCode = {
  badModelId: 400001,
  noBalance: 400002,
  badToken: 400004,
  notYours: 403001,
  requestNotFound: 404001,
  invalidInput: 422001,
  /** ours: a body that is not a JSON object */
  badRequest: 400000,
  /** ours: no such endpoint, or wrong method */
  noSuchEndpoint: 404000,
  /** ours */
  tooLarge: 413001,
  /** ours */
  rateLimited: 429001,
  internal: 500001,
} as const;
