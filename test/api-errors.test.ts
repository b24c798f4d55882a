/**
 * Every row of API.md's error table, triggered for real against the emulator: the typed
 * error, its fields, whether it was retried, a message a user can act on — and the API token
 * nowhere in the message, the stack, JSON.stringify or util.inspect (cause chain included).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { RunComfyClient, type RunComfyClientOptions } from "../src/api/client.js";
import {
  ApiAuthError,
  ApiError,
  ForbiddenRequestError,
  InputRejectedError,
  isApiFailure,
  ModelNotFoundError,
  NoBalanceError,
  parseErrorBody,
  RateLimitedError,
  RequestNotFoundError,
  ServerError,
  TransportError,
} from "../src/api/errors.js";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { AuthError, ExitCode, RunflowError } from "../src/errors.js";
import {
  ALEPH,
  alephInput,
  closedPortUrl,
  expectNoToken,
  fakeClock,
  json,
  rejectionOf,
  startTestServer,
  TOKEN,
  type FakeClock,
} from "./api-helpers.js";

const OTHER_TOKEN = "other-t0k3n-SECRET-9999";

let emulator: RunningEmulator;
let clock: FakeClock = fakeClock();

beforeAll(async () => {
  emulator = await startEmulator({ token: TOKEN, duration: 2_000, clock: { now: () => clock.now() } });
});
beforeEach(() => {
  clock = fakeClock();
  emulator.reset();
});
afterAll(() => emulator.close());

function client(options: Partial<RunComfyClientOptions> = {}): RunComfyClient {
  return new RunComfyClient({ baseUrl: emulator.url, token: TOKEN, clock, random: () => 0.5, ...options });
}

function callsTo(endpoint: string): number {
  return emulator.requestLog().filter((entry) => entry.endpoint === endpoint).length;
}

async function newRequest(api = client()): Promise<string> {
  const outcome = await api.submit(ALEPH, alephInput(emulator.url));
  if (outcome.kind !== "submitted") throw new Error(outcome.reason);
  return outcome.requestId;
}

describe("API errors, row by row", () => {
  test("a wrong token: ApiAuthError, an AuthError exiting 4, not retried", async () => {
    const wrong = "wr0ng-SECRET-token";
    const error = await rejectionOf(client({ token: wrong }).submit(ALEPH, alephInput(emulator.url)));
    expect(error).toBeInstanceOf(ApiAuthError);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ exitCode: ExitCode.auth, status: 401, errorCode: 400004, phase: "submit" });
    expect((error as Error).message).toBe(
      "the RunComfy API refused the API token (HTTP 401, error 400004): invalid or expired API token",
    );
    expect((error as RunflowError).hint).toContain("RUNCOMFY_API_TOKEN");
    expect(callsTo("submit")).toBe(1);
    expect(emulator.submissions().total).toBe(0);
    expectNoToken(error, wrong);
  });

  test("a wrong token on /status stops there too, without a retry", async () => {
    const error = await rejectionOf(client({ token: "nope-SECRET" }).status("r1"));
    expect(error).toBeInstanceOf(ApiAuthError);
    expect(callsTo("status")).toBe(1);
    expectNoToken(error, "nope-SECRET");
  });

  test("a request of another token: ForbiddenRequestError (403001), fatal for that request only", async () => {
    emulator.configure({ token: null });
    const requestId = await newRequest();
    const error = await rejectionOf(client({ token: OTHER_TOKEN }).result(requestId));
    expect(error).toBeInstanceOf(ForbiddenRequestError);
    expect(error).not.toBeInstanceOf(AuthError);
    expect(error).toMatchObject({
      status: 403,
      errorCode: 403001,
      requestId,
      exitCode: ExitCode.stepsFailed,
    });
    expect((error as Error).message).toBe(
      `request ${requestId} belongs to another API token (HTTP 403, error 403001)`,
    );
    expect(callsTo("result")).toBe(1);
    expectNoToken(error, OTHER_TOKEN);
    expectNoToken(error);
  });

  test("an unknown model: ModelNotFoundError (404, 400001) naming the model", async () => {
    const error = await rejectionOf(client().submit("acme/no-such-model", { prompt: "x" }));
    expect(error).toBeInstanceOf(ModelNotFoundError);
    expect(error).toMatchObject({ status: 404, errorCode: 400001, modelId: "acme/no-such-model" });
    expect((error as Error).message).toMatch(
      /^the RunComfy API has no model "acme\/no-such-model" \(HTTP 404, error 400001\)/,
    );
    expect(callsTo("submit")).toBe(1);
    expectNoToken(error);
  });

  test("an input the schema refuses: InputRejectedError (422) with the detail as readable lines", async () => {
    const error = await rejectionOf(client().submit(ALEPH, { prompt: "a cat", ratio: "3:1" }));
    expect(error).toBeInstanceOf(InputRejectedError);
    const rejected = error as InputRejectedError;
    expect(rejected).toMatchObject({ status: 422, errorCode: 422001, modelId: ALEPH });
    expect(rejected.issues.map((issue) => issue.field)).toEqual(
      expect.arrayContaining(["video_url", "ratio"]),
    );
    const lines = rejected.message.split("\n");
    expect(lines[0]).toBe(`the RunComfy API rejected the input for ${ALEPH} (HTTP 422, error 422001):`);
    expect(lines.slice(1).some((line) => line.startsWith("  video_url: "))).toBe(true);
    expect(lines.slice(1).some((line) => line.startsWith("  ratio: "))).toBe(true);
    expect(emulator.submissions().total).toBe(0);
    expectNoToken(error);
  });

  test("an unknown request id: RequestNotFoundError (404001)", async () => {
    const error = await rejectionOf(client().status("no-such-request"));
    expect(error).toBeInstanceOf(RequestNotFoundError);
    expect(error).toMatchObject({ status: 404, errorCode: 404001, requestId: "no-such-request" });
    expect((error as Error).message).toBe(
      "request no-such-request is unknown to the RunComfy API or has expired (HTTP 404, error 404001)",
    );
    expect(callsTo("status")).toBe(1);
    expectNoToken(error);
  });

  test("an expired request: RequestNotFoundError on /result", async () => {
    const requestId = await newRequest();
    emulator.expire(requestId);
    const error = await rejectionOf(client().result(requestId));
    expect(error).toBeInstanceOf(RequestNotFoundError);
    expect((error as RunflowError).hint).toContain("submit the step again");
    expectNoToken(error);
  });

  test("no balance: NoBalanceError (402, 400002), nothing created, not retried", async () => {
    emulator.configure({ noBalance: true });
    const error = await rejectionOf(client().submit(ALEPH, alephInput(emulator.url)));
    expect(error).toBeInstanceOf(NoBalanceError);
    expect(error).toMatchObject({ status: 402, errorCode: 400002 });
    expect((error as RunflowError).hint).toContain("top up");
    expect(callsTo("submit")).toBe(1);
    expect(emulator.submissions().total).toBe(0);
    expectNoToken(error);
  });

  test("rate limited with Retry-After until the attempts run out: RateLimitedError", async () => {
    emulator.configure({ faults: [{ endpoint: "status", kind: "429", times: 3, retryAfter: 2 }] });
    const error = await rejectionOf(client({ retry: { attempts: 3 } }).status("r1"));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ status: 429, retryAfterMs: 2_000 });
    expect((error as Error).message).toContain("it asked to wait 2 s");
    expect(clock.sleeps).toEqual([2_000, 2_000]);
    expectNoToken(error);
  });

  test("rate limited without Retry-After until the attempts run out: RateLimitedError with exponential waits", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "429", times: 3 }] });
    const error = await rejectionOf(
      client({ retry: { attempts: 3 } }).submit(ALEPH, alephInput(emulator.url)),
    );
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBeUndefined();
    expect(clock.sleeps).toEqual([375, 750]);
    expect(emulator.submissions().total).toBe(0);
    expectNoToken(error);
  });

  test("an internal error until the attempts run out: ServerError with the API's code", async () => {
    emulator.configure({ faults: [{ endpoint: "result", kind: "500", times: 2 }] });
    const error = await rejectionOf(client({ retry: { attempts: 2 } }).result("r1"));
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ status: 500, errorCode: 500001 });
    expect((error as Error).message).toBe(
      "the RunComfy API failed the result call (HTTP 500, error 500001): internal server error (emulated)",
    );
    expectNoToken(error);
  });

  test.each([
    ["502", "Bad Gateway"],
    ["503", "Service Unavailable"],
    ["504", "Gateway Timeout"],
  ] as const)("a %s gateway page (not JSON): ServerError without needing a body", async (kind, phrase) => {
    emulator.configure({ faults: [{ endpoint: "status", kind, times: 1 }] });
    const error = await rejectionOf(client({ retry: { attempts: 1 } }).status("r1"));
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ status: Number(kind), errorCode: undefined });
    expect((error as Error).message).toBe(
      `the RunComfy API failed the status call (HTTP ${kind}) (${phrase})`,
    );
    expectNoToken(error);
  });

  test("no connection: TransportError naming the host and the socket error", async () => {
    const base = await closedPortUrl();
    const error = await rejectionOf(
      new RunComfyClient({ baseUrl: base, token: TOKEN, clock, retry: { attempts: 2 } }).status("r1"),
    );
    expect(error).toBeInstanceOf(TransportError);
    expect((error as Error).message).toBe(`no answer from ${base} to the status call (ECONNREFUSED)`);
    expectNoToken(error);
  });

  test("every API error is a RunflowError recognised by isApiFailure", async () => {
    const errors = [
      await rejectionOf(client({ token: "bad-SECRET" }).status("r1")),
      await rejectionOf(client().status("missing")),
      await rejectionOf(client().submit("acme/none", {})),
    ];
    for (const error of errors) {
      expect(error).toBeInstanceOf(RunflowError);
      expect(isApiFailure(error)).toBe(true);
    }
    expect(isApiFailure(new Error("x"))).toBe(false);
  });
});

describe("server text that echoes the token", () => {
  test("is redacted from the message and the input issues", async () => {
    const server = await startTestServer((request, response) =>
      json(response, 422, {
        error_code: 422001,
        error_message: `bad input from ${request.headers.authorization ?? ""}`,
        detail: [{ loc: ["body", "prompt"], msg: `token ${TOKEN} is not a prompt`, type: "value_error" }],
      }),
    );
    try {
      const error = await rejectionOf(
        new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock }).submit(ALEPH, {}),
      );
      expect(error).toBeInstanceOf(InputRejectedError);
      expect((error as InputRejectedError).issues).toEqual([
        { field: "prompt", message: "token [redacted] is not a prompt", kind: "value_error" },
      ]);
      expectNoToken(error);
    } finally {
      await server.close();
    }
  });

  test("is redacted from a ServerError's message", async () => {
    const server = await startTestServer((request, response) =>
      json(response, 500, {
        error_code: 500001,
        error_message: `crashed on ${request.headers.authorization ?? ""}`,
      }),
    );
    try {
      const error = await rejectionOf(
        new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock, retry: { attempts: 1 } }).status("r1"),
      );
      expect((error as Error).message).toContain("crashed on Bearer [redacted]");
      expectNoToken(error);
    } finally {
      await server.close();
    }
  });
});

describe("parseErrorBody", () => {
  test("reads RunComfy's fields, and a code given as text", () => {
    expect(parseErrorBody('{"error_code":"404001","error_message":"gone"}')).toEqual({
      errorCode: 404001,
      message: "gone",
      detail: undefined,
    });
  });

  test("reads a FastAPI-style detail string, or a nested error message", () => {
    expect(parseErrorBody('{"detail":"Not authenticated"}').message).toBe("Not authenticated");
    expect(parseErrorBody('{"error":{"message":"boom"}}').message).toBe("boom");
  });

  test("gives nothing for an HTML page", () => {
    expect(parseErrorBody("<html><body>502 Bad Gateway</body></html>")).toEqual({});
  });

  test("falls back to a plain ApiError for a refusal it has no type for", async () => {
    const server = await startTestServer((_request, response) =>
      json(response, 409, { error_message: "conflict" }),
    );
    try {
      const error = await rejectionOf(
        new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock }).cancel("r1"),
      );
      expect(error).toBeInstanceOf(ApiError);
      expect((error as Error).message).toBe("the RunComfy API refused the cancel call (HTTP 409): conflict");
      expect(server.received).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
