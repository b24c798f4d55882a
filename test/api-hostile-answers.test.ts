/**
 * RunComfyClient against answers a hostile or broken network gives, over real HTTP to the
 * emulator's fault modes: an endless or stalled body, an empty or truncated 200, a redirect,
 * a 429 that asks to wait an hour while the run stops. Each is bounded, classified like a
 * 5xx (retried on a poll, `unknown` on a POST) and, when it goes on, counted toward
 * "API unreachable" like one.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { RunComfyClient, type RunComfyClientOptions } from "../src/api/client.js";
import { UnusableAnswerError } from "../src/api/errors.js";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { isTransientApiFailure } from "../src/engine/api-health.js";
import type { Fault } from "../src/emulator/config.js";
import {
  ALEPH,
  alephInput,
  fakeClock,
  rejectionOf,
  startTestServer,
  TOKEN,
  type FakeClock,
} from "./api-helpers.js";

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

function calls(endpoint: string) {
  return emulator.requestLog().filter((entry) => entry.endpoint === endpoint);
}

async function submitted(api: RunComfyClient): Promise<string> {
  const outcome = await api.submit(ALEPH, alephInput(emulator.url));
  if (outcome.kind !== "submitted") throw new Error(`expected a submission, got ${outcome.reason}`);
  return outcome.requestId;
}

function faults(...list: Fault[]): void {
  emulator.configure({ faults: list });
}

describe("a stop ends the waits between tries", () => {
  test("a submission waiting out Retry-After: 3600 throws the stop's reason at once and sends nothing more", async () => {
    faults({ endpoint: "submit", kind: "429", retryAfter: 3600 });
    const stop = new AbortController();
    const reason = new Error("run stopped");
    // The stop arrives while the client sleeps the Retry-After (virtual time: the sleep is asked for, then aborted).
    const stopping: FakeClock = {
      ...clock,
      sleep: async (ms, signal) => {
        stop.abort(reason);
        await clock.sleep(ms, signal);
      },
    };
    const error = await rejectionOf(
      client({ clock: stopping }).submit(ALEPH, alephInput(emulator.url), { stopSignal: stop.signal }),
    );
    expect(error).toBe(reason);
    expect(calls("submit")).toHaveLength(1);
    expect(emulator.submissions().total).toBe(0);
  });

  test("the stop does not cut a POST already on the wire: its answer is awaited and the request recorded", async () => {
    const stop = new AbortController();
    faults({ endpoint: "submit", kind: "slow", delayMs: 200, times: 1 });
    const submitting = client().submit(ALEPH, alephInput(emulator.url), { stopSignal: stop.signal });
    while (calls("submit").length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    stop.abort(new Error("run stopped"));
    expect(await submitting).toMatchObject({ kind: "submitted" });
    expect(emulator.submissions().total).toBe(1);
  });
});

describe("answers are bounded", () => {
  test("an endless 200 body on /status is cut at the size limit and retried like a 5xx", async () => {
    const api = client({ maxAnswerBytes: 1024 * 1024 });
    const requestId = await submitted(api);
    faults({ endpoint: "status", kind: "endless", times: 1 });
    expect((await api.status(requestId)).status).toBe("in_progress");
    expect(calls("status")).toHaveLength(2);
    expect(clock.sleeps).toEqual([375]);
  });

  test("an endless body on every try ends in an error that says the answer was too large", async () => {
    const api = client({ retry: { attempts: 2 } });
    const requestId = await submitted(api);
    faults({ endpoint: "status", kind: "endless" });
    const error = await rejectionOf(api.status(requestId));
    expect(error).toBeInstanceOf(UnusableAnswerError);
    expect((error as Error).message).toBe(
      "the RunComfy API's answer to the status call could not be used: HTTP 200, but the answer was larger than 8 MB",
    );
  });

  test("a /status body that stops arriving is timed out, said so, and retried", async () => {
    // 1 s, not less: the retried call's whole answer must come within it, on a loaded machine too.
    const api = client({ requestTimeoutMs: 1_000 });
    const requestId = await submitted(api);
    faults({ endpoint: "status", kind: "stall", times: 1 });
    expect((await api.status(requestId)).status).toBe("in_progress");
    expect(calls("status")).toHaveLength(2);
    faults({ endpoint: "status", kind: "stall" });
    const error = await rejectionOf(
      client({ requestTimeoutMs: 100, retry: { attempts: 1 } }).status(requestId),
    );
    expect((error as Error).message).toBe(
      "the RunComfy API's answer to the status call could not be used: HTTP 200, but the answer stopped arriving for 0.1 s",
    );
  });

  test("an answer that declares a length past the limit is refused before its body is read", async () => {
    // A throwaway server: it promises 9 MB and sends a few bytes, so reading it would hang.
    const server = await startTestServer((_request, response) => {
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": String(9 * 1024 * 1024),
      });
      response.write('{"status":"in_queue"');
    });
    try {
      const api = new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock, retry: { attempts: 1 } });
      const error = await rejectionOf(api.status("r1"));
      expect((error as Error).message).toBe(
        "the RunComfy API's answer to the status call could not be used: HTTP 200, but the answer was larger than 8 MB",
      );
    } finally {
      await server.close();
    }
  });

  test.each(["endless", "stall"] as const)(
    "the same limits hold over a fetch transport: /status answering %s once is retried",
    async (kind) => {
      // 1 s: room for the retried call's answer on a loaded machine.
      const api = client({ fetch: globalThis.fetch, requestTimeoutMs: 1_000, maxAnswerBytes: 1024 * 1024 });
      const requestId = await submitted(api);
      faults({ endpoint: "status", kind, times: 1 });
      expect((await api.status(requestId)).status).toBe("in_progress");
      expect(calls("status")).toHaveLength(2);
    },
  );

  test.each(["endless", "stall"] as const)(
    "a submission answered by a 200 that is %s is `unknown`, sent once",
    async (kind) => {
      faults({ endpoint: "submit", kind, times: 1 });
      const outcome = await client({ requestTimeoutMs: 100 }).submit(ALEPH, alephInput(emulator.url));
      expect(outcome).toMatchObject({ kind: "unknown" });
      expect(outcome.kind === "unknown" && outcome.reason).toMatch(
        /^submit: HTTP 200, but the answer (was larger than 8 MB|stopped arriving for 0\.1 s): the answer could not be used; the submission may have been created, so it is not sent again$/,
      );
      expect(calls("submit")).toHaveLength(1);
    },
  );
});

describe("malformed answers are transient API failures", () => {
  test.each(["empty-200", "truncated-json", "307", "502"] as const)(
    "/status answering %s is retried, and when it goes on the error counts toward 'API unreachable'",
    async (kind) => {
      emulator.configure({ duration: 600_000 });
      const api = client();
      const requestId = await submitted(api);
      faults({ endpoint: "status", kind, times: 3 });
      expect((await api.status(requestId)).status).toBe("in_progress");
      expect(calls("status")).toHaveLength(4);
      faults({ endpoint: "status", kind });
      const error = await rejectionOf(api.status(requestId));
      // The run's judgement of the API (engine/api-health.ts) counts it like a 5xx or a lost connection.
      expect(isTransientApiFailure(error)).toBe(true);
    },
  );

  test("an empty 200 on every try says so", async () => {
    emulator.configure({ duration: 600_000 });
    const api = client();
    const requestId = await submitted(api);
    faults({ endpoint: "status", kind: "empty-200" });
    const error = await rejectionOf(api.status(requestId));
    expect(error).toBeInstanceOf(UnusableAnswerError);
    expect((error as Error).message).toBe(
      "the RunComfy API's answer to the status call could not be used: HTTP 200 with an empty body",
    );
    expect(calls("status")).toHaveLength(5);
  });

  test("a submission answered by truncated JSON or an empty 200 is `unknown`, sent once", async () => {
    for (const kind of ["truncated-json", "empty-200"] as const) {
      emulator.reset();
      faults({ endpoint: "submit", kind, times: 1 });
      const outcome = await client().submit(ALEPH, alephInput(emulator.url));
      expect(outcome).toMatchObject({ kind: "unknown" });
      expect(calls("submit")).toHaveLength(1);
    }
  });
});
