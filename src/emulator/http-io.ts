/** The wire side: reading bodies, writing replies and byte ranges, dropping connections. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Reply } from "./replies.js";
import { readRange, type VirtualFile } from "./virtual-file.js";

export class BodyTooLargeError extends Error {}

export async function readBody(request: IncomingMessage, limitBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw new BodyTooLargeError(`the body is larger than ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export type ByteRange = { start: number; end: number } | "unsatisfiable" | undefined;

/**
 * A single `bytes=` range of a file of `size` bytes (RFC 9110 §14.1.2). Several ranges, or a
 * header that is not a byte range, are ignored (the whole file is sent), as servers may.
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  if (first === "" && last === "") return undefined;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

export function dropConnection(request: IncomingMessage): void {
  request.socket.destroy();
}

function writeBuffered(
  response: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: Buffer,
  head: boolean,
): void {
  response.writeHead(status, { ...headers, "content-length": String(body.length) });
  response.end(head ? undefined : body);
}

export interface WriteOptions {
  /** A JSON reply: send only the first half of its JSON, as a complete answer (Content-Length of the half). */
  truncateJson?: boolean;
  /**
   * How a file's body is sent: `whole`; `truncate` sends the headers and half of it, then
   * drops the connection; `stall` sends the headers and half of it, then nothing more, with
   * the connection left open; `endless` sends it without Content-Length, followed by zeros
   * for as long as the client reads.
   */
  body?: "whole" | "truncate" | "stall" | "endless";
  /** Called with the status just before the headers go out. */
  onStatus?: (status: number) => void;
}

/** Writes `reply`; resolves when it has been handed to the socket (or the socket is gone). */
export async function writeReply(
  request: IncomingMessage,
  response: ServerResponse,
  reply: Reply,
  options: WriteOptions = {},
): Promise<number> {
  const head = request.method === "HEAD";
  if (reply.type !== "file") options.onStatus?.(reply.status);
  switch (reply.type) {
    case "json": {
      const whole = Buffer.from(JSON.stringify(reply.body));
      const body = options.truncateJson ? whole.subarray(0, Math.floor(whole.length / 2)) : whole;
      writeBuffered(
        response,
        reply.status,
        { "content-type": "application/json", ...reply.headers },
        body,
        head,
      );
      return reply.status;
    }
    case "text":
      writeBuffered(
        response,
        reply.status,
        { "content-type": reply.contentType, ...reply.headers },
        Buffer.from(reply.body),
        head,
      );
      return reply.status;
    case "file":
      return writeFile(request, response, reply.file, head, options);
  }
}

const ENDLESS_CHUNK = Buffer.alloc(64 * 1024, "a");

/**
 * A 200 whose JSON body never ends (`{"status":"in_queue","padding":"aaaa…`), sent as fast
 * as the client reads it, until the client gives up or the emulator closes.
 */
export async function writeEndless(response: ServerResponse): Promise<void> {
  response.writeHead(200, { "content-type": "application/json" });
  response.write('{"status":"in_queue","padding":"');
  let closed = false;
  response.once("close", () => {
    closed = true;
    response.emit("drain");
  });
  while (!closed && !response.destroyed) {
    if (!response.write(ENDLESS_CHUNK)) await new Promise((resolve) => response.once("drain", resolve));
  }
}

/**
 * A 200 that sends its headers (promising 64 bytes) and the start of its JSON, then nothing,
 * keeping the connection open. (`endless` covers a body of undeclared length.)
 */
export function writeStalled(response: ServerResponse): void {
  response.writeHead(200, { "content-type": "application/json", "content-length": "64" });
  response.write('{"status":');
}

async function writeFile(
  request: IncomingMessage,
  response: ServerResponse,
  file: VirtualFile,
  head: boolean,
  { body = "whole", onStatus }: WriteOptions,
): Promise<number> {
  const range = parseRange(request.headers.range, file.size);
  const common = { "content-type": file.contentType, "accept-ranges": "bytes", "cache-control": "no-store" };
  if (range === "unsatisfiable") {
    onStatus?.(416);
    response.writeHead(416, { ...common, "content-range": `bytes */${file.size}`, "content-length": "0" });
    response.end();
    return 416;
  }
  const { start, end } = range ?? { start: 0, end: file.size - 1 };
  const status = range ? 206 : 200;
  const length = end - start + 1;
  const headers: Record<string, string> = { ...common, "content-length": String(Math.max(length, 0)) };
  if (range) headers["content-range"] = `bytes ${start}-${end}/${file.size}`;
  // An endless body has no length to announce: it goes out chunked.
  if (body === "endless") delete headers["content-length"];
  onStatus?.(status);
  response.writeHead(status, headers);
  if (head || length <= 0) {
    response.end();
    return status;
  }
  if (body === "endless") {
    try {
      await pipeline(Readable.from(endlessly(file, start, end)), response);
    } catch {
      // The client gave up, as it should.
    }
    return status;
  }
  if (body === "stall") {
    const sent = Math.floor(length / 2);
    // Half the body, then silence on an open connection: only the client's idle timeout ends it.
    if (sent > 0)
      await pipeline(Readable.from(readRange(file, start, start + sent - 1)), response, { end: false }).catch(
        () => undefined,
      );
    return status;
  }
  if (body === "truncate") {
    const sent = Math.floor(length / 2);
    try {
      if (sent > 0)
        await pipeline(Readable.from(readRange(file, start, start + sent - 1)), response, { end: false });
    } finally {
      // Flush what was sent, then close: the client sees fewer bytes than Content-Length promised.
      request.socket.end();
    }
    return status;
  }
  try {
    await pipeline(Readable.from(readRange(file, start, end)), response);
  } catch {
    // The client went away mid-download: nothing to answer any more.
  }
  return status;
}

const ZEROS = Buffer.alloc(64 * 1024);

/** The bytes `start`..`end` of `file`, then zeros for ever. */
function* endlessly(file: VirtualFile, start: number, end: number): Generator<Buffer> {
  yield* readRange(file, start, end);
  for (;;) yield ZEROS;
}
