/**
 * The HTTP exchanges of the API client and of output downloads. By default they go through
 * undici's `request` on one keep-alive agent: on loopback it costs about a quarter of the
 * CPU of `fetch` per call (30 µs against 130 µs), and a step makes four calls, so `fetch`
 * alone was a fifth of runflow's CPU per step. Tests that put faults in front of the network
 * pass a `fetch` instead, through fetchTransport.
 */
import type { Dispatcher } from "undici";
import { Agent, errors, redirectInterceptor, request } from "./undici-parts.js";

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | undefined;
  signal?: AbortSignal | undefined;
  /** The longest wait for the answer's headers, and for each pause in its body. */
  timeoutMs: number;
  /** Follow redirects (downloads); the API's calls never do, a redirect could carry the token away. */
  followRedirects?: boolean | undefined;
}

/** What Retry-After and Content-Length are read from. */
export interface HeaderReader {
  get(name: string): string | null;
}

export interface HttpAnswer {
  status: number;
  headers: HeaderReader;
  /** The body as chunks of bytes; read it, or `discard` it, so the connection is reused. */
  body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  discard(): Promise<void>;
}

export type HttpTransport = (request: HttpRequest) => Promise<HttpAnswer>;

/** A 2xx answer (what `fetch` calls `ok`). */
export function isOk(answer: Pick<HttpAnswer, "status">): boolean {
  return answer.status >= 200 && answer.status <= 299;
}

const MAX_REDIRECTIONS = 5;

let agent: Dispatcher | undefined;
let redirectingAgent: Dispatcher | undefined;

function dispatcherFor(followRedirects: boolean): Dispatcher {
  agent ??= new Agent({ keepAliveTimeout: 4_000 });
  if (!followRedirects) return agent;
  redirectingAgent ??= agent.compose(redirectInterceptor({ maxRedirections: MAX_REDIRECTIONS }));
  return redirectingAgent;
}

/** undici's own timeouts, shaped like an aborted fetch's so errors and the retry policy read them alike. */
function asTimeout(error: unknown, timeoutMs: number): unknown {
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) {
    return new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError");
  }
  return error;
}

function headerReader(headers: Record<string, string | string[] | undefined>): HeaderReader {
  return {
    get(name) {
      const value = headers[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(", ") : value;
    },
  };
}

/** The default transport: undici's `request`. */
export const undiciTransport: HttpTransport = async (http) => {
  let answer: Dispatcher.ResponseData;
  try {
    answer = await request(http.url, {
      method: http.method,
      headers: http.headers,
      body: http.body,
      signal: http.signal,
      headersTimeout: http.timeoutMs,
      bodyTimeout: http.timeoutMs,
      dispatcher: dispatcherFor(http.followRedirects ?? false),
    });
  } catch (error) {
    throw asTimeout(error, http.timeoutMs);
  }
  const { body } = answer;
  return {
    status: answer.statusCode,
    headers: headerReader(answer.headers),
    body: (async function* () {
      try {
        for await (const chunk of body) yield chunk as Uint8Array;
      } catch (error) {
        throw asTimeout(error, http.timeoutMs);
      }
    })(),
    async text() {
      try {
        return await body.text();
      } catch (error) {
        throw asTimeout(error, http.timeoutMs);
      }
    },
    async discard() {
      await body.dump().catch(() => undefined);
    },
  };
};

/**
 * A transport over a `fetch` (tests inject one to fail connections or abort mid-flight).
 * The timeout is then an abort of the whole exchange, body included.
 */
export function fetchTransport(fetchFunction: typeof fetch): HttpTransport {
  return async (http) => {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort(new DOMException(`no answer within ${http.timeoutMs} ms`, "TimeoutError"));
    }, http.timeoutMs);
    const forwardAbort = () => controller.abort(http.signal?.reason);
    http.signal?.addEventListener("abort", forwardAbort, { once: true });
    const release = () => {
      clearTimeout(timer);
      http.signal?.removeEventListener("abort", forwardAbort);
    };
    let response: Response;
    try {
      response = await fetchFunction(http.url, {
        method: http.method,
        headers: http.headers,
        body: http.body,
        signal: controller.signal,
        redirect: http.followRedirects ? "follow" : "manual",
      });
    } catch (error) {
      release();
      throw error;
    }
    return {
      status: response.status,
      headers: response.headers,
      body: (async function* () {
        try {
          if (response.body) yield* response.body as AsyncIterable<Uint8Array>;
        } finally {
          release();
        }
      })(),
      async text() {
        try {
          return await response.text();
        } finally {
          release();
        }
      },
      async discard() {
        release();
        await response.body?.cancel().catch(() => undefined);
      },
    };
  };
}
