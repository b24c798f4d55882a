/**
 * RunComfyClient over real HTTP against the emulator (and throwaway servers where an exact
 * socket behaviour is needed). The emulator and the client share one virtual clock, so
 * lifecycles, backoff and polling run instantly and every wait is asserted exactly.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { inspect } from "node:util";
import { RunComfyClient, type RunComfyClientOptions } from "../src/api/client.js";
import { TransportError } from "../src/api/errors.js";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { UsageError } from "../src/errors.js";
import {
  ALEPH,
  alephInput,
  closedPortUrl,
  fakeClock,
  HAILUO,
  hailuoInput,
  json,
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

async function submitted(
  api: RunComfyClient,
  modelId = ALEPH,
  body = alephInput(emulator.url),
): Promise<string> {
  const outcome = await api.submit(modelId, body);
  if (outcome.kind !== "submitted") throw new Error(`expected a submission, got ${outcome.reason}`);
  return outcome.requestId;
}

describe("submitting", () => {
  test("submits Aleph and returns its request id with URLs on the API origin", async () => {
    const outcome = await client().submit(ALEPH, alephInput(emulator.url));
    expect(outcome.kind).toBe("submitted");
    if (outcome.kind !== "submitted") return;
    expect(outcome.statusUrl).toBe(`${emulator.url}/v1/requests/${outcome.requestId}/status`);
    expect(outcome.resultUrl).toBe(`${emulator.url}/v1/requests/${outcome.requestId}/result`);
    expect(outcome.cancelUrl).toBe(`${emulator.url}/v1/requests/${outcome.requestId}/cancel`);
    expect(calls("submit")).toMatchObject([
      {
        method: "POST",
        path: "/v1/models/runwayml/runway-aleph/video-to-video",
        headers: { authorization: "[redacted]", "content-type": "application/json" },
        status: 200,
      },
    ]);
  });

  test("percent-encodes every segment of Hailuo's id and runs it to success", async () => {
    const api = client();
    const requestId = await submitted(api, HAILUO, hailuoInput(emulator.url));
    expect(calls("submit")[0]?.path).toBe("/v1/models/minimax/Hailuo%20Video%2001%20Live");
    expect(emulator.submissions().byModel).toEqual({ [HAILUO]: 1 });
    const result = await api.waitForResult(requestId);
    expect(result.status).toBe("succeeded");
    expect(result.output).toEqual({ video: `${emulator.url}/files/${requestId}/video.mp4` });
  });

  test("retries a submit answered 429, honouring Retry-After, and creates exactly one request", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "429", times: 2, retryAfter: 3 }] });
    const outcome = await client().submit(ALEPH, alephInput(emulator.url));
    expect(outcome.kind).toBe("submitted");
    expect(calls("submit").map((entry) => entry.status)).toEqual([429, 429, 200]);
    expect(emulator.submissions().total).toBe(1);
    expect(clock.sleeps).toEqual([3_000, 3_000]);
  });

  test("retries a submit answered 429 without Retry-After after an exponential backoff", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "429", times: 1 }] });
    expect((await client().submit(ALEPH, alephInput(emulator.url))).kind).toBe("submitted");
    // Equal jitter of the first 500 ms step with random() = 0.5: 250 + 125.
    expect(clock.sleeps).toEqual([375]);
    expect(emulator.submissions().total).toBe(1);
  });

  test("retries a submit whose connection was refused, then creates exactly one request", async () => {
    const refused = await closedPortUrl();
    let tries = 0;
    // The first two tries go to a closed port (a real ECONNREFUSED); the third reaches the emulator.
    const flaky: typeof fetch = (input, init) => {
      tries++;
      const url = String(input instanceof Request ? input.url : input);
      return fetch(tries <= 2 ? url.replace(emulator.url, refused) : url, init);
    };
    const outcome = await client({ fetch: flaky }).submit(ALEPH, alephInput(emulator.url));
    expect(outcome.kind).toBe("submitted");
    expect(tries).toBe(3);
    expect(clock.sleeps).toHaveLength(2);
    expect(emulator.submissions().total).toBe(1);
  });

  test("throws TransportError after the attempts when every connection is refused: nothing was created", async () => {
    const api = new RunComfyClient({
      baseUrl: await closedPortUrl(),
      token: TOKEN,
      clock,
      random: () => 0,
      retry: { attempts: 3 },
    });
    const error = await rejectionOf(api.submit(ALEPH, { prompt: "x" }));
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ transportCode: "ECONNREFUSED", phase: "submit", modelId: ALEPH });
    expect(clock.sleeps).toEqual([250, 500]);
  });

  test("returns unknown, without resending, when the answer of a created request is lost", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "drop-after-create", times: 1 }] });
    const outcome = await client().submit(ALEPH, alephInput(emulator.url));
    expect(outcome.kind).toBe("unknown");
    expect(calls("submit")).toHaveLength(1);
    expect(emulator.submissions().total).toBe(1);
    expect(emulator.submissions().byBody).toMatchObject([{ modelId: ALEPH, count: 1 }]);
  });

  test("returns unknown for an answer lost by the [emulator:lost-answer] marker", async () => {
    const outcome = await client().submit(ALEPH, alephInput(emulator.url, "a cat [emulator:lost-answer]"));
    expect(outcome).toMatchObject({ kind: "unknown" });
    expect(outcome.kind === "unknown" && outcome.reason).toMatch(
      /^submit: UND_ERR_SOCKET: .* not sent again$/,
    );
    expect(emulator.submissions().total).toBe(1);
    expect(calls("submit")).toHaveLength(1);
  });

  test("returns unknown, without resending, when a submit that created its request is answered 500", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "500", times: 1, afterCreate: true }] });
    const outcome = await client().submit(ALEPH, alephInput(emulator.url));
    expect(outcome).toMatchObject({ kind: "unknown" });
    expect(calls("submit")).toHaveLength(1);
    expect(emulator.submissions().total).toBe(1);
  });

  test.each(["502", "503", "504"] as const)(
    "returns unknown for a %s gateway page on submit, sent once",
    async (kind) => {
      emulator.configure({ faults: [{ endpoint: "submit", kind, times: 1 }] });
      const outcome = await client().submit(ALEPH, alephInput(emulator.url));
      expect(outcome).toMatchObject({ kind: "unknown" });
      expect(outcome.kind === "unknown" && outcome.reason).toContain(`HTTP ${kind}`);
      expect(calls("submit")).toHaveLength(1);
    },
  );

  test("returns unknown when a sent submission gets no answer within the request timeout", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "slow", times: 1, delayMs: 10_000 }] });
    const outcome = await client({ requestTimeoutMs: 50 }).submit(ALEPH, alephInput(emulator.url));
    expect(outcome).toMatchObject({ kind: "unknown" });
    expect(outcome.kind === "unknown" && outcome.reason).toContain("TimeoutError");
    expect(calls("submit")).toHaveLength(1);
  });

  test("returns unknown when the caller aborts while the submission is in flight", async () => {
    const controller = new AbortController();
    const abortOnceSent: typeof fetch = (input, init) => {
      const answer = fetch(input, init);
      controller.abort(new Error("shutting down"));
      return answer;
    };
    const outcome = await client({ fetch: abortOnceSent }).submit(ALEPH, alephInput(emulator.url), {
      signal: controller.signal,
    });
    expect(outcome).toEqual({
      kind: "unknown",
      reason: "submit: interrupted while the submission was in flight; it may have been created",
    });
  });

  test("returns unknown for a 200 whose body is not JSON or has no request_id, and sends it once", async () => {
    const bodies = ["<html>ok</html>", JSON.stringify({ status_url: "x" })];
    const server = await startTestServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/html" });
      response.end(bodies[server.received.length - 1]);
    });
    try {
      const api = new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock });
      expect(await api.submit(ALEPH, {})).toEqual({
        kind: "unknown",
        reason:
          "submit: HTTP 200 with a body that is not JSON: the answer could not be used; the submission may have been created, so it is not sent again",
      });
      expect(await api.submit(ALEPH, {})).toMatchObject({ kind: "unknown" });
      expect(server.received).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  test("throws the caller's abort and sends nothing when aborted before submitting", async () => {
    const reason = new Error("stop");
    const error = await rejectionOf(
      client().submit(ALEPH, alephInput(emulator.url), { signal: AbortSignal.abort(reason) }),
    );
    expect(error).toBe(reason);
    expect(calls("submit")).toHaveLength(0);
  });
});

describe("status, result and cancel", () => {
  test("reports in_queue with the queue position, then in_progress, then completed", async () => {
    emulator.configure({ queueDelay: 1_000 });
    const api = client();
    const requestId = await submitted(api);
    expect(await api.status(requestId)).toEqual({
      requestId,
      status: "in_queue",
      queuePosition: 1,
      raw: "in_queue",
    });
    await clock.sleep(1_000);
    expect(await api.status(requestId)).toEqual({ requestId, status: "in_progress", raw: "in_progress" });
    expect((await api.result(requestId)).status).toBe("in_progress");
    await clock.sleep(2_000);
    expect(await api.status(requestId)).toEqual({ requestId, status: "completed", raw: "completed" });
    expect(await api.result(requestId)).toEqual({
      requestId,
      status: "succeeded",
      output: { video: `${emulator.url}/files/${requestId}/video.mp4` },
      createdAt: "2025-01-01T00:00:00.000Z",
      finishedAt: "2025-01-01T00:00:03.000Z",
      // The emulator's default video price, $0.10/second × 5 s: asked with include_cost=true.
      costMicros: 500_000,
    });
  });

  const transient = ["500", "502", "503", "504", "429", "drop"] as const;
  test.each(transient)("retries /status after a %s and succeeds", async (kind) => {
    const api = client();
    const requestId = await submitted(api);
    emulator.configure({ faults: [{ endpoint: "status", kind, times: 1 }] });
    expect((await api.status(requestId)).status).toBe("in_progress");
    expect(calls("status")).toHaveLength(2);
    expect(clock.sleeps).toEqual([375]);
  });

  test.each(transient)("retries /result after a %s and succeeds", async (kind) => {
    const api = client();
    const requestId = await submitted(api);
    emulator.configure({ faults: [{ endpoint: "result", kind, times: 2 }] });
    expect((await api.result(requestId)).status).toBe("in_progress");
    expect(calls("result")).toHaveLength(3);
    expect(clock.sleeps).toEqual([375, 750]);
  });

  test("retries /cancel after a dropped answer and reports the request cancelled", async () => {
    emulator.configure({ queueDelay: 60_000 });
    const api = client();
    const requestId = await submitted(api);
    emulator.configure({ faults: [{ endpoint: "cancel", kind: "drop-after-create", times: 1 }] });
    expect(await api.cancel(requestId)).toEqual({ requestId, outcome: "cancelled", status: "cancelled" });
    expect(calls("cancel")).toHaveLength(2);
  });

  test("says not_cancellable for a request already running", async () => {
    const api = client();
    const requestId = await submitted(api);
    expect(await api.cancel(requestId)).toEqual({
      requestId,
      outcome: "not_cancellable",
      status: "in_progress",
    });
  });

  test("waits the Retry-After of a 429 on /status", async () => {
    const api = client();
    const requestId = await submitted(api);
    emulator.configure({ faults: [{ endpoint: "status", kind: "429", times: 1, retryAfter: 7 }] });
    await api.status(requestId);
    expect(clock.sleeps).toEqual([7_000]);
  });
});

describe("waitForResult", () => {
  test("polls after 1 s and 2 s for a 2 s job, then takes the result", async () => {
    const api = client();
    const requestId = await submitted(api);
    const seen: string[] = [];
    const result = await api.waitForResult(requestId, { onStatus: (status) => seen.push(status.status) });
    expect(result.status).toBe("succeeded");
    expect(seen).toEqual(["in_progress", "completed"]);
    expect(clock.sleeps).toEqual([1_000, 1_000]);
    expect(calls("status")).toHaveLength(2);
    expect(calls("result")).toHaveLength(1);
  });

  test("the guessing looks are due 1 s and 2 s after the submission, however long each answer took", async () => {
    // Every status answer takes 40 ms by the clock the emulator also reads: counted from the
    // previous answer, the 2 s look would come 40 ms after the job's end.
    const virtual = fakeClock();
    let answering = 0;
    clock = {
      sleeps: virtual.sleeps,
      now: () => virtual.now() + answering,
      sleep: (ms, signal) => virtual.sleep(ms, signal),
    };
    const slowStatus: typeof fetch = async (input, init) => {
      const answer = await fetch(input, init);
      if (String(input instanceof Request ? input.url : input).endsWith("/status")) answering += 40;
      return answer;
    };
    const never = new AbortController().signal;
    const scout = { typicalMs: () => undefined, guessing: () => true, changed: () => never };
    for (const guide of [undefined, scout]) {
      const api = client({ fetch: slowStatus });
      const requestId = await submitted(api);
      virtual.sleeps.length = 0;
      const seen: string[] = [];
      const result = await api.waitForResult(requestId, {
        guide,
        startedAt: clock.now(),
        onStatus: (status) => seen.push(status.status),
      });
      expect(result.status).toBe("succeeded");
      expect(seen).toEqual(["in_progress", "completed"]);
      expect(virtual.sleeps).toEqual([1_000, 960]);
    }
  });

  test("a wait planned on a provisional duration is planned again when the exact one is learned", async () => {
    // The guide's 5 s is what one request's look saw; while this wait runs, the result says 2 s.
    let typicalMs = 5_000;
    let provisional = true;
    let change = new AbortController();
    const guide = {
      typicalMs: () => typicalMs,
      guessing: () => false,
      changed: () => change.signal,
      provisional: () => provisional,
    };
    const virtual = fakeClock();
    clock = {
      sleeps: virtual.sleeps,
      now: () => virtual.now(),
      sleep: (ms, signal) => {
        if (provisional) {
          [typicalMs, provisional] = [2_000, false];
          const learned = change;
          change = new AbortController();
          learned.abort(new Error("learned"));
        }
        return virtual.sleep(ms, signal);
      },
    };
    const api = client();
    const requestId = await submitted(api);
    const result = await api.waitForResult(requestId, { guide, startedAt: clock.now() });
    expect(result.status).toBe("succeeded");
    expect(virtual.sleeps).toEqual([2_002]);
    expect(calls("status")).toHaveLength(1);
  });

  test("a guessing look that falls behind waits the shortest time, and the later looks keep their spacing", async () => {
    // The first status answer takes 1.5 s: the 2 s look is overdue when it comes.
    const virtual = fakeClock();
    let answering = 0;
    clock = {
      sleeps: virtual.sleeps,
      now: () => virtual.now() + answering,
      sleep: (ms, signal) => virtual.sleep(ms, signal),
    };
    let statuses = 0;
    const firstSlow: typeof fetch = async (input, init) => {
      const answer = await fetch(input, init);
      if (String(input instanceof Request ? input.url : input).endsWith("/status") && ++statuses === 1)
        answering += 1_500;
      return answer;
    };
    emulator.configure({ duration: 6_000 });
    const api = client({ fetch: firstSlow });
    const requestId = await submitted(api);
    await api.waitForResult(requestId, { startedAt: clock.now() });
    // Looks at 1 s, 2.6 s (100 ms after the 1 s look's answer), then as the schedule's 2.5 s,
    // 3.1 s, 3.9 s … are apart: 0.5 s, 0.625 s, 0.781 s …
    expect(virtual.sleeps).toEqual([1_000, 100, 500, 625, 781, 977, 1_221]);
  });

  test("with the model's typical duration, costs one status poll and one result", async () => {
    const api = client();
    const requestId = await submitted(api);
    const result = await api.waitForResult(requestId, { typicalMs: 2_000 });
    expect(result.status).toBe("succeeded");
    expect(clock.sleeps).toEqual([2_002]);
    expect(calls("status").length + calls("result").length).toBe(2);
  });

  test("a request that ends after its model's typical duration is looked at again at half the model's spread", async () => {
    // The model: 2 s typically, ± 200 ms; this request takes 2.15 s.
    emulator.configure({ duration: 2_150 });
    const api = client();
    const requestId = await submitted(api);
    const never = new AbortController().signal;
    const guide = {
      typicalMs: () => 2_000,
      spreadMs: () => 200,
      guessing: () => false,
      changed: () => never,
    };
    const result = await api.waitForResult(requestId, { guide });
    expect(result.status).toBe("succeeded");
    // Looks at 2.002 s and 2.102 s (running), 2.202 s (done): 52 ms after its end. Without the
    // spread the second look comes a fifth of the elapsed time later, at 2.402 s.
    expect(clock.sleeps).toEqual([2_002, 100, 100]);
    expect(calls("status")).toHaveLength(3);
  });

  test("a wait whose timer fires early by the clock sleeps the rest before it looks: one status, one result", async () => {
    // Node counts a timer's delay from the event loop's time, which lags while a turn is busy:
    // here every long wait ends 3 ms early by the clock the emulator also reads.
    const virtual = fakeClock();
    clock = {
      sleeps: virtual.sleeps,
      now: () => virtual.now(),
      sleep: (ms, signal) => virtual.sleep(ms >= 100 ? ms - 3 : ms, signal),
    };
    const api = client();
    const requestId = await submitted(api);
    const never = new AbortController().signal;
    const guide = { typicalMs: () => 2_000, guessing: () => false, changed: () => never };
    const result = await api.waitForResult(requestId, { guide });
    expect(result.status).toBe("succeeded");
    expect(clock.sleeps).toEqual([2_002 - 3, 3]);
    expect(calls("status")).toHaveLength(1);
    expect(calls("result")).toHaveLength(1);
  });

  test("trusts /result when /status says completed but the request failed", async () => {
    const api = client();
    const requestId = await submitted(
      api,
      ALEPH,
      alephInput(emulator.url, "a cat [emulator:fail=GPU melted]"),
    );
    const seen: string[] = [];
    const result = await api.waitForResult(requestId, { onStatus: (status) => seen.push(status.raw) });
    expect(seen.at(-1)).toBe("completed");
    expect(result).toMatchObject({ requestId, status: "failed", error: "GPU melted" });
    expect(result.output).toBeUndefined();
  });

  test("reports failed when /status says failed and /result gives the error as a string", async () => {
    emulator.configure({ statusFailedAs: "failed", resultErrorAs: "string" });
    const api = client();
    const requestId = await submitted(
      api,
      ALEPH,
      alephInput(emulator.url, "[emulator:fail=out of memory] a cat"),
    );
    expect(await api.waitForResult(requestId)).toMatchObject({ status: "failed", error: "out of memory" });
  });

  test("reports a request cancelled while queued as cancelled", async () => {
    emulator.configure({ queueDelay: 60_000 });
    const api = client();
    const requestId = await submitted(api);
    await api.cancel(requestId);
    expect((await api.waitForResult(requestId)).status).toBe("cancelled");
  });

  test("keeps polling through a burst of 503s on /status", async () => {
    const api = client();
    const requestId = await submitted(api);
    emulator.configure({ faults: [{ endpoint: "status", kind: "503", times: 2 }] });
    expect((await api.waitForResult(requestId)).status).toBe("succeeded");
  });

  test("stops polling when aborted", async () => {
    emulator.configure({ duration: 600_000 });
    const api = client();
    const requestId = await submitted(api);
    const controller = new AbortController();
    const reason = new Error("user pressed ctrl-c");
    const error = await rejectionOf(
      api.waitForResult(requestId, { signal: controller.signal, onStatus: () => controller.abort(reason) }),
    );
    expect(error).toBe(reason);
    expect(calls("status")).toHaveLength(1);
    expect(calls("result")).toHaveLength(0);
  });

  test("never takes an unknown status word for success: it asks /result until that says so", async () => {
    let resultCalls = 0;
    const server = await startTestServer((request, response) => {
      if (request.url?.endsWith("/status"))
        return json(response, 200, { request_id: "r1", status: "exploded" });
      resultCalls++;
      json(response, 200, {
        request_id: "r1",
        status: resultCalls < 3 ? "in_progress" : "succeeded",
        output: { image: "x" },
      });
    });
    try {
      const api = new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock });
      const seen: string[] = [];
      const result = await api.waitForResult("r1", { onStatus: (status) => seen.push(status.status) });
      expect(seen).toEqual(["unknown", "unknown", "unknown"]);
      expect(result).toMatchObject({ status: "succeeded", output: { image: "x" } });
    } finally {
      await server.close();
    }
  });
});

describe("the catalog", () => {
  test("lists every model with its schema, page by page", async () => {
    emulator.configure({ modelsPageSize: 1 });
    const models = await client().listModels();
    expect(models.map((model) => model.model_id).sort()).toEqual([HAILUO, ALEPH].sort());
    for (const model of models) expect(model.input_schema.type).toBe("object");
    const pages = calls("models");
    expect(pages.length).toBeGreaterThanOrEqual(2);
    for (const page of pages) expect(page.query.include_schema).toBe("true");
  });

  test("passes the search text on", async () => {
    const models = await client().listModels({ search: "hailuo" });
    expect(models.map((model) => model.model_id)).toEqual([HAILUO]);
    expect(calls("models")[0]?.query.search).toBe("hailuo");
  });

  test("follows cursor paging, and a next page on another origin only on the API's own", async () => {
    const server = await startTestServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://x");
      const cursor = url.searchParams.get("cursor");
      if (cursor === null) {
        return json(response, 200, { models: [{ model_id: "a/one", input_schema: {} }], next_cursor: "c2" });
      }
      if (cursor === "c2") {
        return json(response, 200, {
          models: [{ model_id: "a/two", input_schema: {} }],
          next_page: "http://elsewhere.example/v1/models?cursor=c3",
        });
      }
      json(response, 200, { models: [{ model_id: "a/three", input_schema: {} }] });
    });
    try {
      const api = new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock });
      expect((await api.listModels()).map((model) => model.model_id)).toEqual(["a/one", "a/two", "a/three"]);
      expect(server.received.map((request) => request.path)).toEqual([
        "/v1/models?include_schema=true",
        "/v1/models?include_schema=true&cursor=c2",
        "/v1/models?cursor=c3",
      ]);
    } finally {
      await server.close();
    }
  });
});

describe("the token stays with the API", () => {
  test("describe(), toJSON() and util.inspect never show the token", () => {
    const api = client();
    const renderings = [
      JSON.stringify(api),
      JSON.stringify(api.describe()),
      inspect(api, { showHidden: true, depth: 9 }),
      Object.values(api).join(" "),
    ];
    for (const text of renderings) expect(text).not.toContain(TOKEN);
    expect(api.describe()).toEqual({ baseUrl: emulator.url, token: "[redacted]" });
  });

  test("ignores status, result and cancel URLs on another origin and builds them from the base URL", async () => {
    const server = await startTestServer((_request, response) =>
      json(response, 200, {
        request_id: "r 1",
        status_url: "https://elsewhere.example/v1/requests/r1/status",
        result_url: "https://elsewhere.example/v1/requests/r1/result",
        cancel_url: "https://elsewhere.example/v1/requests/r1/cancel",
      }),
    );
    try {
      const outcome = await new RunComfyClient({ baseUrl: server.url, token: TOKEN, clock }).submit(
        ALEPH,
        {},
      );
      expect(outcome).toEqual({
        kind: "submitted",
        requestId: "r 1",
        statusUrl: `${server.url}/v1/requests/r%201/status`,
        resultUrl: `${server.url}/v1/requests/r%201/result`,
        cancelUrl: `${server.url}/v1/requests/r%201/cancel`,
      });
    } finally {
      await server.close();
    }
  });

  test("does not follow a redirect, so the token never reaches its target", async () => {
    const target = await startTestServer((_request, response) =>
      json(response, 200, { status: "completed" }),
    );
    const redirecting = await startTestServer((_request, response) => {
      response.writeHead(302, { location: `${target.url}/v1/requests/r1/status` });
      response.end();
    });
    try {
      const api = new RunComfyClient({ baseUrl: redirecting.url, token: TOKEN, clock });
      const error = await rejectionOf(api.status("r1"));
      expect(error).toMatchObject({ status: 302, phase: "status" });
      expect(target.received).toHaveLength(0);
      expect(redirecting.received[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      await Promise.all([target.close(), redirecting.close()]);
    }
  });
});

describe("the base URL", () => {
  test("refuses plain http to a host that is not loopback", () => {
    for (const baseUrl of ["http://model-api.runcomfy.net", "http://10.0.0.5:8080", "http://128.0.0.1"]) {
      expect(() => new RunComfyClient({ baseUrl, token: TOKEN })).toThrow(UsageError);
    }
    expect(() => new RunComfyClient({ baseUrl: "http://model-api.runcomfy.net", token: TOKEN })).toThrow(
      "refusing to send the API token over plain http to model-api.runcomfy.net: the API base URL must be https",
    );
  });

  test("accepts plain http on loopback, and https anywhere, without the trailing slash", () => {
    const cases: [string, string][] = [
      ["http://127.0.0.1:8080/", "http://127.0.0.1:8080"],
      ["http://127.4.5.6:9", "http://127.4.5.6:9"],
      ["http://localhost:3000", "http://localhost:3000"],
      ["http://[::1]:3000/", "http://[::1]:3000"],
      ["https://model-api.runcomfy.net/", "https://model-api.runcomfy.net"],
      ["https://proxy.example/runcomfy/", "https://proxy.example/runcomfy"],
    ];
    for (const [baseUrl, expected] of cases)
      expect(new RunComfyClient({ baseUrl, token: TOKEN }).baseUrl).toBe(expected);
    expect(new RunComfyClient({ token: TOKEN }).baseUrl).toBe("https://model-api.runcomfy.net");
  });

  test("refuses what is not an http(s) URL, and an empty token", () => {
    expect(() => new RunComfyClient({ baseUrl: "model-api.runcomfy.net", token: TOKEN })).toThrow(UsageError);
    expect(() => new RunComfyClient({ baseUrl: "ftp://127.0.0.1", token: TOKEN })).toThrow(UsageError);
    expect(() => new RunComfyClient({ baseUrl: `https://user:${TOKEN}@example.com`, token: TOKEN })).toThrow(
      UsageError,
    );
    expect(() => new RunComfyClient({ token: "  " })).toThrow("Expected `token` to be a non-empty string");
  });
});
