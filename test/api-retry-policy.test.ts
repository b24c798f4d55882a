/**
 * The retry policy (src/api/retry-policy.ts): the classify table row by row, transport error
 * codes dug out of real fetch failures against real sockets, exact backoff with injected
 * randomness, Retry-After in both forms, and the adaptive poll schedule.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  backoff,
  classify,
  DEFAULT_POLL_POLICY,
  guessedLookAt,
  nextPollDelay,
  parseRetryAfter,
  transportErrorCode,
  type Phase,
  type RetryAction,
} from "../src/api/retry-policy.js";
import { closedPortUrl, rejectionOf, startTestServer, type TestServer } from "./api-helpers.js";

/** An error shaped like Node 20's fetch failure: TypeError("fetch failed") with the cause inside. */
function fetchFailure(code: string, nested = false): TypeError {
  const inner = Object.assign(new Error(`socket trouble ${code}`), { code });
  const cause = nested ? new Error("wrapper", { cause: inner }) : inner;
  return new TypeError("fetch failed", { cause });
}

const API_PHASES: Phase[] = ["status", "result", "cancel", "catalog"];
const TOKENLESS_PHASES: Phase[] = ["download", "probe"];

describe("classify: answers with an HTTP status", () => {
  const submitRows: [number, number | undefined, RetryAction][] = [
    [429, undefined, "retry"],
    [500, 500001, "unknown"],
    [502, undefined, "unknown"],
    [503, undefined, "unknown"],
    [504, undefined, "unknown"],
    [599, undefined, "unknown"],
    [401, 400004, "stop-run"],
    [403, undefined, "stop-run"],
    [400, 400004, "stop-run"],
    [403, 403001, "fatal"],
    [400, undefined, "fatal"],
    [402, 400002, "fatal"],
    [404, 400001, "fatal"],
    [422, 422001, "fatal"],
    [302, undefined, "unknown"],
  ];
  test.each(submitRows)("submit answered %i (error_code %s) → %s", (status, errorCode, action) => {
    expect(classify({ phase: "submit", status, errorCode }).action).toBe(action);
  });

  const apiRows: [number, number | undefined, RetryAction][] = [
    [429, undefined, "retry"],
    [500, 500001, "retry"],
    [502, undefined, "retry"],
    [503, undefined, "retry"],
    [504, undefined, "retry"],
    [401, 400004, "stop-run"],
    [403, undefined, "stop-run"],
    [403, 403001, "fatal"],
    [404, 404001, "fatal"],
    [400, undefined, "fatal"],
    [422, 422001, "fatal"],
    // A redirect is never followed (the token); the request it is about still exists, so a poll tries again.
    [302, undefined, "retry"],
    [307, undefined, "retry"],
  ];
  for (const phase of API_PHASES) {
    test.each(apiRows)(`${phase} answered %i (error_code %s) → %s`, (status, errorCode, action) => {
      expect(classify({ phase, status, errorCode }).action).toBe(action);
    });
  }

  const tokenlessRows: [number, RetryAction][] = [
    [429, "retry"],
    [500, "retry"],
    [503, "retry"],
    // These hosts never get the token, so a 401/403 there cannot mean the token is bad.
    [401, "fatal"],
    [403, "fatal"],
    [404, "fatal"],
  ];
  for (const phase of TOKENLESS_PHASES) {
    test.each(tokenlessRows)(`${phase} answered %i → %s`, (status, action) => {
      expect(classify({ phase, status }).action).toBe(action);
    });
  }

  test("says in its reason that an unknown submission is not sent again", () => {
    expect(classify({ phase: "submit", status: 503 }).reason).toBe(
      "submit: HTTP 503: the server failed; the submission may have been created, so it is not sent again",
    );
  });

  test("honours Retry-After on a 429, in seconds", () => {
    const headers = new Headers({ "retry-after": "7" });
    expect(classify({ phase: "submit", status: 429, headers })).toMatchObject({
      action: "retry",
      retryAfterMs: 7_000,
    });
  });

  test("honours Retry-After given as an HTTP-date, against the caller's now", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    const headers = new Headers({ "retry-after": "Wed, 01 Jan 2025 00:00:30 GMT" });
    expect(classify({ phase: "status", status: 503, headers, now }).retryAfterMs).toBe(30_000);
  });

  test("gives no wait for an answer it will not retry", () => {
    const headers = new Headers({ "retry-after": "7" });
    expect(classify({ phase: "submit", status: 503, headers }).retryAfterMs).toBeUndefined();
  });
});

describe("classify: transport errors", () => {
  const connectPhase = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"];
  const afterSending = [
    "ECONNRESET",
    "UND_ERR_SOCKET",
    "UND_ERR_HEADERS_TIMEOUT",
    "UND_ERR_BODY_TIMEOUT",
    "EPIPE",
  ];

  test.each(connectPhase)("retries a submit that failed with %s, before anything was sent", (code) => {
    expect(classify({ phase: "submit", error: fetchFailure(code) }).action).toBe("retry");
    expect(classify({ phase: "submit", error: fetchFailure(code, true) }).action).toBe("retry");
  });

  test.each(afterSending)("leaves a submit that failed with %s unknown, never resending it", (code) => {
    expect(classify({ phase: "submit", error: fetchFailure(code) }).action).toBe("unknown");
  });

  test("leaves a submit cut by our own timeout unknown", () => {
    const timeout = new DOMException("no answer within 60000 ms", "TimeoutError");
    expect(classify({ phase: "submit", error: timeout }).action).toBe("unknown");
  });

  test("leaves a submit that failed in a way it cannot place unknown", () => {
    expect(classify({ phase: "submit", error: new TypeError("fetch failed") }).action).toBe("unknown");
    expect(classify({ phase: "submit", error: "something odd" }).action).toBe("unknown");
  });

  test.each([...connectPhase, ...afterSending])(
    "retries a status, result, cancel, catalog or download call after %s",
    (code) => {
      for (const phase of [...API_PHASES, ...TOKENLESS_PHASES]) {
        expect(classify({ phase, error: fetchFailure(code) }).action).toBe("retry");
      }
    },
  );

  test("does not retry a refused TLS certificate, in any phase", () => {
    for (const phase of ["submit", ...API_PHASES, ...TOKENLESS_PHASES] as Phase[]) {
      expect(classify({ phase, error: fetchFailure("CERT_HAS_EXPIRED") }).action).toBe("fatal");
    }
  });
});

describe("transportErrorCode on real fetch failures", () => {
  let destroyer: TestServer;
  let cutter: TestServer;
  let silent: TestServer;
  beforeAll(async () => {
    destroyer = await startTestServer((request) => request.socket.destroy());
    cutter = await startTestServer((_request, response) => {
      response.writeHead(200, { "content-length": "1000" });
      response.write("only the first bytes");
      setImmediate(() => response.socket?.destroy());
    });
    silent = await startTestServer(() => undefined);
  });
  afterAll(async () => {
    await Promise.all([destroyer.close(), cutter.close(), silent.close()]);
  });

  test("finds ECONNREFUSED for a closed port, and a submit there is retried", async () => {
    const error = await rejectionOf(
      fetch(`${await closedPortUrl()}/v1/models/x`, { method: "POST", body: "{}" }),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(transportErrorCode(error)).toBe("ECONNREFUSED");
    expect(classify({ phase: "submit", error }).action).toBe("retry");
  });

  test("finds UND_ERR_SOCKET when the server destroys the socket after reading, and a submit there is unknown", async () => {
    const error = await rejectionOf(fetch(`${destroyer.url}/v1/models/x`, { method: "POST", body: "{}" }));
    expect(transportErrorCode(error)).toBe("UND_ERR_SOCKET");
    expect(classify({ phase: "submit", error }).action).toBe("unknown");
    expect(classify({ phase: "status", error }).action).toBe("retry");
  });

  test("finds UND_ERR_SOCKET when a body is cut mid-stream", async () => {
    const response = await fetch(`${cutter.url}/files/x`);
    const error = await rejectionOf(response.arrayBuffer());
    expect(transportErrorCode(error)).toBe("UND_ERR_SOCKET");
  });

  test("names a timeout abort TimeoutError", async () => {
    const error = await rejectionOf(fetch(`${silent.url}/slow`, { signal: AbortSignal.timeout(20) }));
    expect(transportErrorCode(error)).toBe("TimeoutError");
    expect(classify({ phase: "submit", error }).action).toBe("unknown");
  });

  test("finds a code inside an AggregateError of several attempted addresses", () => {
    const aggregate = new AggregateError(
      [Object.assign(new Error("a"), { code: "ECONNREFUSED" })],
      "all failed",
    );
    expect(transportErrorCode(new TypeError("fetch failed", { cause: aggregate }))).toBe("ECONNREFUSED");
  });

  test("finds nothing in an error without a code", () => {
    expect(transportErrorCode(new TypeError("fetch failed"))).toBeUndefined();
    expect(transportErrorCode(undefined)).toBeUndefined();
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");

  test("reads delay-seconds", () => {
    expect(parseRetryAfter("7")).toBe(7_000);
    expect(parseRetryAfter(" 0 ")).toBe(0);
  });

  test("reads an HTTP-date, and a date already past means now", () => {
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:01:00 GMT", now)).toBe(60_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 23:00:00 GMT", now)).toBe(0);
  });

  test("ignores a date without a now, and text that is neither form", () => {
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:01:00 GMT")).toBeUndefined();
    expect(parseRetryAfter("1.5", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe("backoff", () => {
  const policy = { baseMs: 1_000, maxMs: 8_000 };

  test("waits at least half of each doubling step, the other half drawn from random", () => {
    expect(backoff(1, policy, () => 0)).toBe(500);
    expect(backoff(1, policy, () => 0.5)).toBe(750);
    expect(backoff(2, policy, () => 0.5)).toBe(1_500);
    expect(backoff(3, policy, () => 0.25)).toBe(2_500);
  });

  test("caps the step at maxMs", () => {
    expect(backoff(4, policy, () => 0)).toBe(4_000);
    expect(backoff(10, policy, () => 0)).toBe(4_000);
    expect(backoff(10, policy, () => 0.999)).toBe(7_996);
  });

  test("grows by the given factor", () => {
    expect(backoff(3, { ...policy, factor: 3, maxMs: 100_000 }, () => 0)).toBe(4_500);
  });

  test("lets Retry-After win over the exponential wait", () => {
    expect(backoff(1, policy, () => 0.5, 7_000)).toBe(7_000);
    expect(backoff(5, policy, () => 0.5, 0)).toBe(0);
  });

  test("caps Retry-After at five minutes, or at maxRetryAfterMs", () => {
    expect(backoff(1, policy, () => 0.5, 3_600_000)).toBe(300_000);
    expect(backoff(1, { ...policy, maxRetryAfterMs: 60_000 }, () => 0.5, 3_600_000)).toBe(60_000);
  });
});

/** Polls a request of `durationMs` as waitForResult does; counts requests and lateness. */
function simulatePolling(
  durationMs: number,
  typicalMs?: number,
  spreadMs?: number,
): { requests: number; latenessMs: number } {
  let elapsed = 0;
  for (let polls = 0; ; polls++) {
    elapsed += nextPollDelay(polls, DEFAULT_POLL_POLICY, { typicalMs, spreadMs, elapsedMs: elapsed });
    if (elapsed >= durationMs) return { requests: polls + 2, latenessMs: elapsed - durationMs };
  }
}

describe("nextPollDelay", () => {
  test("without a hint looks at 1 s and 2 s, then each a quarter of the elapsed time later, up to 5 s apart", () => {
    const waits = [0, 1, 2, 3, 4, 5, 6].map((polls) => nextPollDelay(polls));
    expect(waits).toEqual([1_000, 1_000, 500, 625, 781, 977, 1_221]);
    const looks = [10, 11, 12, 13, 14].map((polls) => guessedLookAt(polls));
    expect(looks).toEqual([14_904, 18_630, 23_288, 28_288, 33_288]);
    expect(nextPollDelay(40)).toBe(5_000);
  });

  test("without a hint, a request is seen at most a quarter of its duration after its end", () => {
    for (const durationMs of [2_001, 2_100, 2_600, 3_000, 7_000, 12_345]) {
      const { latenessMs } = simulatePolling(durationMs);
      expect(latenessMs).toBeLessThanOrEqual(durationMs / 4);
    }
  });

  test("without a hint, a 2 s job costs two status polls and one result", () => {
    expect(simulatePolling(2_000)).toEqual({ requests: 3, latenessMs: 0 });
  });

  test("with the model's typical duration, first looks just after it", () => {
    expect(nextPollDelay(0, DEFAULT_POLL_POLICY, { typicalMs: 2_000, elapsedMs: 0 })).toBe(2_002);
    expect(nextPollDelay(0, DEFAULT_POLL_POLICY, { typicalMs: 2_000, elapsedMs: 1_200 })).toBe(802);
  });

  test("with a hint, a 2 s job costs one status poll and one result, and is seen within 5% of its end", () => {
    const { requests, latenessMs } = simulatePolling(2_000, 2_000);
    expect(requests).toBe(2);
    expect(latenessMs).toBeLessThanOrEqual(100);
  });

  test("with a hint, jobs of 1.5–2.5 s cost at most 3 requests on average", () => {
    const durations = Array.from({ length: 101 }, (_, index) => 1_500 + index * 10);
    const total = durations.reduce((sum, duration) => sum + simulatePolling(duration, 2_000).requests, 0);
    expect(total / durations.length).toBeLessThanOrEqual(3);
  });

  test("once overdue, waits a fifth of the elapsed time, within 100 ms and 5 s", () => {
    expect(nextPollDelay(1, DEFAULT_POLL_POLICY, { typicalMs: 2_000, elapsedMs: 2_050 })).toBe(410);
    expect(nextPollDelay(5, DEFAULT_POLL_POLICY, { typicalMs: 2_000, elapsedMs: 60_000 })).toBe(5_000);
    expect(nextPollDelay(1, DEFAULT_POLL_POLICY, { typicalMs: 100, elapsedMs: 200 })).toBe(100);
  });

  test("once overdue within three spreads of the typical end, waits half the spread (at least 100 ms)", () => {
    // A model of 2 s ± 0.4 s: looked at again 200 ms later, not 410 ms.
    expect(nextPollDelay(1, DEFAULT_POLL_POLICY, { typicalMs: 2_000, spreadMs: 400, elapsedMs: 2_050 })).toBe(
      200,
    );
    expect(nextPollDelay(2, DEFAULT_POLL_POLICY, { typicalMs: 2_000, spreadMs: 100, elapsedMs: 2_150 })).toBe(
      100,
    );
    // A long model: the spread's pace, or a fifth of the elapsed time when that is shorter, and 5 s at most.
    expect(
      nextPollDelay(1, DEFAULT_POLL_POLICY, { typicalMs: 30_000, spreadMs: 3_000, elapsedMs: 30_010 }),
    ).toBe(1_500);
    expect(
      nextPollDelay(1, DEFAULT_POLL_POLICY, { typicalMs: 90_000, spreadMs: 20_000, elapsedMs: 90_010 }),
    ).toBe(5_000);
  });

  test("later than three spreads past the typical end, or the spread unknown, waits a fifth of the elapsed time", () => {
    expect(nextPollDelay(3, DEFAULT_POLL_POLICY, { typicalMs: 2_000, spreadMs: 100, elapsedMs: 2_400 })).toBe(
      480,
    );
    expect(
      nextPollDelay(1, DEFAULT_POLL_POLICY, { typicalMs: 2_000, spreadMs: undefined, elapsedMs: 2_050 }),
    ).toBe(410);
  });

  test("a model whose durations never vary: one more look after 100 ms, then a fifth of the elapsed time", () => {
    expect(nextPollDelay(1, DEFAULT_POLL_POLICY, { typicalMs: 2_000, spreadMs: 0, elapsedMs: 2_010 })).toBe(
      100,
    );
    expect(nextPollDelay(2, DEFAULT_POLL_POLICY, { typicalMs: 2_000, spreadMs: 0, elapsedMs: 2_110 })).toBe(
      422,
    );
  });

  test("with the spread, the jobs of 2 s ± 0.4 s that end late are seen three times sooner, for at most two more requests", () => {
    // Uniform over 1.6–2.4 s: a mean absolute deviation of 200 ms. The half that ends before
    // the typical 2 s is seen at it either way; the half that ends after it is what changes.
    const late = Array.from({ length: 40 }, (_, index) => 2_010 + index * 10);
    const average = (spreadMs?: number) => {
      const runs = late.map((duration) => simulatePolling(duration, 2_000, spreadMs));
      const mean = (pick: (run: (typeof runs)[number]) => number) =>
        runs.reduce((sum, run) => sum + pick(run), 0) / runs.length;
      return { requests: mean((run) => run.requests), latenessMs: mean((run) => run.latenessMs) };
    };
    const paced = average(200);
    const unpaced = average(undefined);
    expect(paced.latenessMs * 3).toBeLessThan(unpaced.latenessMs);
    expect(paced.requests).toBeLessThanOrEqual(unpaced.requests + 2);
  });

  test("looks at once when a request is already overdue before its first poll (a re-attach)", () => {
    expect(nextPollDelay(0, DEFAULT_POLL_POLICY, { typicalMs: 2_000, elapsedMs: 600_000 })).toBe(100);
  });

  test("never waits less than 100 ms, nor more than 30 s before a long job's typical end", () => {
    expect(nextPollDelay(0, DEFAULT_POLL_POLICY, { typicalMs: 2_000, elapsedMs: 2_040 })).toBe(100);
    expect(nextPollDelay(0, DEFAULT_POLL_POLICY, { typicalMs: 600_000, elapsedMs: 0 })).toBe(30_000);
  });

  test("ignores a typical duration that is not positive", () => {
    expect(nextPollDelay(2, DEFAULT_POLL_POLICY, { typicalMs: 0, elapsedMs: 5_000 })).toBe(500);
  });
});

describe("classify: answers that cannot be used", () => {
  test("retried on an idempotent call, `unknown` on a submission, whatever their status and Retry-After", () => {
    const headers = { get: () => "60" };
    for (const phase of API_PHASES) {
      expect(classify({ phase, status: 200, headers, unusable: "HTTP 200 with an empty body" })).toEqual({
        action: "retry",
        kind: "unusable-answer",
        reason: `${phase}: HTTP 200 with an empty body: the answer could not be used; retrying`,
      });
    }
    expect(classify({ phase: "submit", status: 200, unusable: "HTTP 200 with an empty body" }).action).toBe(
      "unknown",
    );
  });
});
