/**
 * Shared by the api-*.test.ts files: a clock the tests own (shared with the emulator, so
 * request lifecycles, backoff and polling all run on virtual time, instantly), tiny
 * throwaway HTTP servers for exact socket behaviour, and the inputs of the two models.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { expect } from "vitest";
import type { Clock } from "../src/util/clock.js";

export const TOKEN = "t0k3n-test-SECRET-4242";
export const ALEPH = "runwayml/runway-aleph/video-to-video";
export const HAILUO = "minimax/Hailuo Video 01 Live";

export interface FakeClock extends Clock {
  /** Every wait asked for, in order. */
  readonly sleeps: number[];
}

/** Virtual time: `sleep(ms)` moves `now` forward by `ms` and resolves on the next turn. */
export function fakeClock(start = Date.parse("2025-01-01T00:00:00.000Z")): FakeClock {
  let current = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => current,
    async sleep(ms, signal) {
      signal?.throwIfAborted();
      sleeps.push(ms);
      current += ms;
      await new Promise((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
    },
  };
}

export function alephInput(base: string, prompt = "a cat walking through rain"): Record<string, unknown> {
  return { prompt, video_url: `${base}/media/video.mp4`, ratio: "1280:720" };
}

export function hailuoInput(base: string, prompt = "a dog running on a beach"): Record<string, unknown> {
  return { prompt, image_url: `${base}/media/image.png?w=640&h=480` };
}

export interface TestServer {
  url: string;
  /** Every request received: method, path and headers (lower-cased names). */
  received: { method: string; path: string; headers: IncomingMessage["headers"] }[];
  close(): Promise<void>;
}

/** A throwaway HTTP server on 127.0.0.1 for behaviour the emulator has no switch for. */
export async function startTestServer(
  handle: (request: IncomingMessage, response: ServerResponse, body: string) => void,
): Promise<TestServer> {
  const received: TestServer["received"] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ method: request.method ?? "", path: request.url ?? "", headers: request.headers });
      handle(request, response, Buffer.concat(chunks).toString("utf8"));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URL on which nothing listens: connecting to it is refused. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

export function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
  });
  response.end(text);
}

/** Every way an error can be shown or serialized, its cause chain included. */
export function everyRendering(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) parts.push(current.message, current.stack ?? "", current.toString());
    parts.push(JSON.stringify(current) ?? "", inspect(current, { depth: 8, showHidden: true }));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join("\n");
}

export function expectNoToken(error: unknown, token = TOKEN): void {
  expect(error).toBeDefined();
  expect(everyRendering(error)).not.toContain(token);
}

/** The rejection of `promise`; fails the test when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject, but it resolved");
}
