/**
 * The emulator speaks the RunComfy Model API as API.md describes it: submit, status,
 * result, cancel, auth, errors, expiry and the catalog, over real HTTP with plain fetch.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { canonicalJson, sha256Hex } from "../src/util/canonical.js";
import {
  ALEPH,
  alephInput,
  call,
  cancel,
  HAILUO,
  hailuoInput,
  manualClock,
  modelPath,
  resultOf,
  statusOf,
  submit,
  submitOk,
  TOKEN,
} from "./emulator-client.js";

describe("submitting", () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterEach(() => emulator.reset());
  afterAll(() => emulator.close());

  test("accepts the Aleph model and answers absolute status, result and cancel URLs", async () => {
    const answer = await submit(emulator.url, alephInput(emulator.url));
    expect(answer.status).toBe(200);
    const id = answer.json.request_id as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.json).toEqual({
      request_id: id,
      status_url: `${emulator.url}/v1/requests/${id}/status`,
      result_url: `${emulator.url}/v1/requests/${id}/result`,
      cancel_url: `${emulator.url}/v1/requests/${id}/cancel`,
    });
  });

  test("accepts Hailuo under its percent-encoded id with spaces", async () => {
    const answer = await call(emulator.url, "POST", "/v1/models/minimax/Hailuo%20Video%2001%20Live", {
      body: hailuoInput(emulator.url),
    });
    expect(answer.status).toBe(200);
    expect(emulator.submissions().byModel).toEqual({ [HAILUO]: 1 });
  });

  test("gives every submission its own request id", async () => {
    const ids = await Promise.all(
      [1, 2, 3, 4, 5].map(() => submitOk(emulator.url, alephInput(emulator.url))),
    );
    expect(new Set(ids).size).toBe(5);
  });

  test("answers 404 with error_code 400001 for an unknown model", async () => {
    const answer = await submit(emulator.url, { prompt: "x" }, "acme/no-such-model");
    expect(answer.status).toBe(404);
    expect(answer.json.error_code).toBe(400001);
    expect(answer.json.error_message).toContain("acme/no-such-model");
  });

  test("answers 422 with error_code 422001 and a detail entry per problem for input that fails the schema", async () => {
    const answer = await submit(emulator.url, { prompt: "x", ratio: "1:1", colour: "red" });
    expect(answer.status).toBe(422);
    expect(answer.json.error_code).toBe(422001);
    const detail = answer.json.detail as { loc: string[]; msg: string; type: string }[];
    const fields = detail.map((item) => item.loc.join("."));
    expect(fields).toEqual(expect.arrayContaining(["body.video_url", "body.ratio", "body.colour"]));
    for (const item of detail) expect(typeof item.msg).toBe("string");
    expect(emulator.submissions().total).toBe(0);
  });

  test("refuses a prompt longer than the schema's maxLength", async () => {
    const answer = await submit(emulator.url, alephInput(emulator.url, "x".repeat(1001)));
    expect(answer.status).toBe(422);
    expect(answer.json.detail).toEqual([
      expect.objectContaining({ loc: ["body", "prompt"], type: "maxLength" }),
    ]);
  });

  test.each([
    ["not JSON", "{nope"],
    ["a JSON list", "[1, 2]"],
    ["a JSON string", '"hello"'],
  ])("answers 400 for a body that is %s", async (_what, body) => {
    const answer = await call(emulator.url, "POST", `/v1/models/${modelPath(ALEPH)}`, { body });
    expect(answer.status).toBe(400);
    expect(typeof answer.json.error_message).toBe("string");
  });

  test("answers 402 with error_code 400002 and creates nothing when the account has no balance", async () => {
    emulator.configure({ noBalance: true });
    const answer = await submit(emulator.url, alephInput(emulator.url));
    expect(answer.status).toBe(402);
    expect(answer.json.error_code).toBe(400002);
    expect(emulator.submissions().total).toBe(0);
  });

  test("answers 404 for a path that is no endpoint and 405 for the wrong method", async () => {
    expect((await call(emulator.url, "GET", "/v2/nothing")).status).toBe(404);
    const wrongMethod = await call(emulator.url, "DELETE", `/v1/models/${modelPath(ALEPH)}`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  });
});

describe("auth", () => {
  let open: RunningEmulator;
  let locked: RunningEmulator;
  beforeAll(async () => {
    open = await startEmulator();
    locked = await startEmulator({ token: TOKEN });
  });
  afterAll(async () => {
    await open.close();
    await locked.close();
  });

  test("answers 401 with error_code 400004 on every API endpoint when no token is sent", async () => {
    const id = await submitOk(open.url, alephInput(open.url));
    const answers = await Promise.all([
      submit(open.url, alephInput(open.url), ALEPH, null),
      statusOf(open.url, id, null),
      resultOf(open.url, id, null),
      cancel(open.url, id, null),
      call(open.url, "GET", "/v1/models", { token: null }),
    ]);
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.json.error_code).toBe(400004);
    }
  });

  test("answers 401 for a header that is not a Bearer token", async () => {
    const answer = await call(open.url, "GET", "/v1/models", {
      token: null,
      headers: { authorization: "Basic abc" },
    });
    expect(answer.status).toBe(401);
  });

  test("accepts any non-empty token when none is fixed", async () => {
    expect((await submit(open.url, alephInput(open.url), ALEPH, "whatever")).status).toBe(200);
  });

  test("answers 401 for a wrong token when a token is fixed, and accepts the right one", async () => {
    const wrong = await submit(locked.url, alephInput(locked.url), ALEPH, "not-the-token");
    expect(wrong.status).toBe(401);
    expect(wrong.json.error_code).toBe(400004);
    expect((await submit(locked.url, alephInput(locked.url), ALEPH, TOKEN)).status).toBe(200);
  });

  test("answers 403 with error_code 403001 when another token asks about a request", async () => {
    const id = await submitOk(open.url, alephInput(open.url), ALEPH, "token-a");
    for (const answer of [
      await statusOf(open.url, id, "token-b"),
      await resultOf(open.url, id, "token-b"),
      await cancel(open.url, id, "token-b"),
    ]) {
      expect(answer.status).toBe(403);
      expect(answer.json.error_code).toBe(403001);
    }
    expect((await statusOf(open.url, id, "token-a")).status).toBe(200);
  });

  test("never echoes the token in the request log, but shows that one was sent", async () => {
    open.reset();
    await submit(open.url, alephInput(open.url), ALEPH, "secret-token-value");
    await call(open.url, "GET", "/media/video.mp4", { token: null });
    const log = open.requestLog();
    expect(log).toHaveLength(2);
    expect(log[0]?.headers.authorization).toBe("[redacted]");
    expect(log[1]?.headers).not.toHaveProperty("authorization");
    expect(JSON.stringify(log)).not.toContain("secret-token-value");
    const viaHttp = await call(open.url, "GET", "/__emulator/requests", { token: null });
    expect(viaHttp.text).not.toContain("secret-token-value");
  });
});

describe("the request lifecycle", () => {
  const clock = manualClock();
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ clock, duration: 2_000 });
  });
  afterEach(() => emulator.reset());
  afterAll(() => emulator.close());

  test("goes in_queue → in_progress → completed on /status and succeeded with an output on /result", async () => {
    emulator.configure({ queueDelay: 1_000 });
    const id = await submitOk(emulator.url, alephInput(emulator.url));

    const queued = await statusOf(emulator.url, id);
    expect(queued.json).toEqual({
      request_id: id,
      status: "in_queue",
      queue_position: 1,
      status_url: `${emulator.url}/v1/requests/${id}/status`,
      result_url: `${emulator.url}/v1/requests/${id}/result`,
    });
    clock.advance(1_000);
    const running = await statusOf(emulator.url, id);
    expect(running.json.status).toBe("in_progress");
    expect(running.json).not.toHaveProperty("queue_position");
    clock.advance(2_000);
    expect((await statusOf(emulator.url, id)).json.status).toBe("completed");

    const result = await resultOf(emulator.url, id);
    expect(result.status).toBe(200);
    expect(result.json).toEqual({
      request_id: id,
      status: "succeeded",
      output: { video: `${emulator.url}/files/${id}/video.mp4` },
      created_at: "2025-01-01T00:00:00.000Z",
      finished_at: "2025-01-01T00:00:03.000Z",
    });
  });

  test("answers /result with 200 in every state, with output only when succeeded", async () => {
    emulator.configure({ capacity: 1 });
    const running = await submitOk(emulator.url, alephInput(emulator.url));
    const queued = await submitOk(emulator.url, alephInput(emulator.url));
    const cancelled = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await cancel(emulator.url, cancelled)).json.outcome).toBe("cancelled");

    const inQueue = await resultOf(emulator.url, queued);
    const inProgress = await resultOf(emulator.url, running);
    const wasCancelled = await resultOf(emulator.url, cancelled);
    for (const answer of [inQueue, inProgress, wasCancelled]) {
      expect(answer.status).toBe(200);
      expect(answer.json).not.toHaveProperty("output");
    }
    expect(inQueue.json.status).toBe("in_queue");
    expect(inProgress.json.status).toBe("in_progress");
    expect(inProgress.json).not.toHaveProperty("finished_at");
    expect(wasCancelled.json.status).toBe("cancelled");
    expect(wasCancelled.json.finished_at).toBe(new Date(clock.now()).toISOString());
  });

  test("counts queue positions down as the single slot frees", async () => {
    emulator.configure({ capacity: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await submitOk(emulator.url, alephInput(emulator.url)));
    const positions = async () =>
      Promise.all(
        ids.map(async (id) => {
          const { json } = await statusOf(emulator.url, id);
          return json.status === "in_queue" ? json.queue_position : json.status;
        }),
      );
    expect(await positions()).toEqual(["in_progress", 1, 2, 3]);
    clock.advance(2_000);
    expect(await positions()).toEqual(["completed", "in_progress", 1, 2]);
    clock.advance(2_000);
    expect(await positions()).toEqual(["completed", "completed", "in_progress", 1]);
    clock.advance(4_000);
    expect(await positions()).toEqual(["completed", "completed", "completed", "completed"]);
  });

  test("cancels a queued request, moving those behind it up, and refuses to cancel a running one", async () => {
    emulator.configure({ capacity: 1 });
    const running = await submitOk(emulator.url, alephInput(emulator.url));
    const queued = await submitOk(emulator.url, alephInput(emulator.url));
    const behind = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await statusOf(emulator.url, behind)).json.queue_position).toBe(2);

    const cancelQueued = await cancel(emulator.url, queued);
    expect(cancelQueued.status).toBe(202);
    expect(cancelQueued.json).toEqual({ request_id: queued, status: "cancelled", outcome: "cancelled" });
    expect((await statusOf(emulator.url, queued)).json.status).toBe("cancelled");
    expect((await statusOf(emulator.url, behind)).json.queue_position).toBe(1);

    const cancelRunning = await cancel(emulator.url, running);
    expect(cancelRunning.status).toBe(202);
    expect(cancelRunning.json).toEqual({
      request_id: running,
      status: "in_progress",
      outcome: "not_cancellable",
    });
    clock.advance(2_000);
    expect((await resultOf(emulator.url, running)).json.status).toBe("succeeded");
    expect((await statusOf(emulator.url, behind)).json.status).toBe("in_progress");
  });

  test("answers not_cancellable for a finished request", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    clock.advance(2_000);
    expect((await cancel(emulator.url, id)).json).toEqual({
      request_id: id,
      status: "completed",
      outcome: "not_cancellable",
    });
  });

  test("with duration 0 a request is completed on its first poll", async () => {
    emulator.configure({ duration: 0 });
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await statusOf(emulator.url, id)).json.status).toBe("completed");
  });

  test("draws each request's duration from a range", async () => {
    emulator.configure({ duration: { min: 1_000, max: 3_000 } });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await submitOk(emulator.url, alephInput(emulator.url)));
    clock.advance(999);
    for (const id of ids) expect((await statusOf(emulator.url, id)).json.status).toBe("in_progress");
    clock.advance(2_001);
    for (const id of ids) expect((await statusOf(emulator.url, id)).json.status).toBe("completed");
  });

  test("says completed on /status but failed on /result for a failed request, by default", async () => {
    emulator.configure({ failRate: 1, duration: 0 });
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await statusOf(emulator.url, id)).json.status).toBe("completed");
    const result = await resultOf(emulator.url, id);
    expect(result.json.status).toBe("failed");
    expect(result.json).not.toHaveProperty("output");
    expect(result.json.error).toEqual({ message: expect.any(String) as string });
  });

  test("can say failed on /status and carry the error as a string on /result", async () => {
    emulator.configure({ failRate: 1, duration: 0, statusFailedAs: "failed", resultErrorAs: "string" });
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await statusOf(emulator.url, id)).json.status).toBe("failed");
    expect(typeof (await resultOf(emulator.url, id)).json.error).toBe("string");
  });
});

describe("expiry and unknown requests", () => {
  const clock = manualClock();
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ clock });
  });
  afterEach(() => emulator.reset());
  afterAll(() => emulator.close());

  test("answers 404 with error_code 404001 for a request id it never issued", async () => {
    for (const answer of [
      await statusOf(emulator.url, "00000000-0000-4000-8000-000000000000"),
      await resultOf(emulator.url, "00000000-0000-4000-8000-000000000000"),
      await cancel(emulator.url, "00000000-0000-4000-8000-000000000000"),
    ]) {
      expect(answer.status).toBe(404);
      expect(answer.json.error_code).toBe(404001);
    }
  });

  test("answers 404001 for a request expired through the control endpoint, and stops serving its output", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await call(emulator.url, "GET", `/files/${id}/video.mp4`, { token: null })).status).toBe(200);
    const expired = await call(emulator.url, "POST", `/__emulator/requests/${id}/expire`, { token: null });
    expect(expired.status).toBe(200);
    expect((await statusOf(emulator.url, id)).json.error_code).toBe(404001);
    expect((await resultOf(emulator.url, id)).status).toBe(404);
    expect((await call(emulator.url, "GET", `/files/${id}/video.mp4`, { token: null })).status).toBe(404);
  });

  test("expires finished requests once the configured retention has passed", async () => {
    emulator.configure({ retention: 60_000 });
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    clock.advance(59_999);
    expect((await resultOf(emulator.url, id)).status).toBe(200);
    clock.advance(1);
    expect((await resultOf(emulator.url, id)).json.error_code).toBe(404001);
  });
});

describe("the model catalog", () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());

  test("pages the catalog one model at a time by limit and offset, with schemas when asked", async () => {
    const seen: Record<string, unknown>[] = [];
    let total = Infinity;
    for (let offset = 0; offset < total && offset < 10; offset = seen.length) {
      const page = await call(
        emulator.url,
        "GET",
        `/v1/models?include_schema=true&limit=50&offset=${offset}`,
      );
      expect(page.status).toBe(200);
      total = page.json.total as number;
      seen.push(...(page.json.models as Record<string, unknown>[]));
      expect(page.json.models).toHaveLength(1);
    }
    expect(seen.map((model) => model.model_id).sort()).toEqual([HAILUO, ALEPH].sort());
    const aleph = seen.find((model) => model.model_id === ALEPH) as { input_schema: { required: string[] } };
    expect(aleph.input_schema.required).toEqual(["prompt", "video_url", "ratio"]);
    expect(seen[0]).toHaveProperty("output_schema");
    expect(seen[0]).not.toHaveProperty("source");
  });

  test("leaves schemas out unless include_schema is true, and filters by search", async () => {
    emulator.configure({ modelsPageSize: 10 });
    const all = await call(emulator.url, "GET", "/v1/models");
    expect(all.json.models).toEqual([{ model_id: HAILUO }, { model_id: ALEPH }]);
    const found = await call(emulator.url, "GET", "/v1/models?search=hailuo&include_schema=true");
    expect(found.json.total).toBe(1);
    expect((found.json.models as { model_id: string }[])[0]?.model_id).toBe(HAILUO);
  });

  test("answers one model's entry at its percent-encoded path", async () => {
    const answer = await call(emulator.url, "GET", `/v1/models/${modelPath(HAILUO)}`);
    expect(answer.status).toBe(200);
    expect(answer.json.model_id).toBe(HAILUO);
    expect(answer.json).toHaveProperty("input_schema.properties.image_url");
  });
});

describe("the control endpoints", () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterEach(() => emulator.reset());
  afterAll(() => emulator.close());

  test("logs every API and file call with method, path, query, body and status, in order", async () => {
    const body = alephInput(emulator.url);
    const id = await submitOk(emulator.url, body);
    await statusOf(emulator.url, id);
    await call(emulator.url, "GET", "/media/image.png?w=10&h=20", { token: null });
    const log = (await call(emulator.url, "GET", "/__emulator/requests", { token: null }))
      .json as unknown as Record<string, unknown>[];
    expect(log.map((entry) => [entry.seq, entry.method, entry.path, entry.status, entry.endpoint])).toEqual([
      [1, "POST", `/v1/models/${modelPath(ALEPH)}`, 200, "submit"],
      [2, "GET", `/v1/requests/${id}/status`, 200, "status"],
      [3, "GET", "/media/image.png", 200, "media"],
    ]);
    expect(log[0]?.body).toEqual(body);
    expect(log[2]?.query).toEqual({ w: "10", h: "20" });
    expect(Date.parse(log[0]?.at as string)).not.toBeNaN();
  });

  test("counts submissions per model and per identical body, hashed as canonical JSON", async () => {
    const body = alephInput(emulator.url);
    const first = await submitOk(emulator.url, body);
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const second = await submitOk(emulator.url, reordered);
    await submitOk(emulator.url, hailuoInput(emulator.url), HAILUO);
    await submit(emulator.url, { prompt: "refused" });

    const stats = (await call(emulator.url, "GET", "/__emulator/submissions", { token: null })).json;
    expect(stats.total).toBe(3);
    expect(stats.byModel).toEqual({ [ALEPH]: 2, [HAILUO]: 1 });
    expect(stats.byBody).toEqual(
      expect.arrayContaining([
        { modelId: ALEPH, bodySha256: sha256Hex(canonicalJson(body)), count: 2, requestIds: [first, second] },
        expect.objectContaining({ modelId: HAILUO, count: 1 }),
      ]),
    );
  });

  test("reports how many requests are in each phase", async () => {
    emulator.configure({ capacity: 1, duration: 60_000 });
    await submitOk(emulator.url, alephInput(emulator.url));
    const queued = await submitOk(emulator.url, alephInput(emulator.url));
    await submitOk(emulator.url, alephInput(emulator.url));
    await cancel(emulator.url, queued);
    const state = (await call(emulator.url, "GET", "/__emulator/state", { token: null })).json;
    expect(state.requests).toEqual({
      total: 3,
      in_queue: 1,
      in_progress: 1,
      succeeded: 0,
      failed: 0,
      cancelled: 1,
      expired: 0,
    });
    expect(state.submissions).toBe(3);
  });

  test("reset forgets requests, the log and the counters, and restores the start config", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    emulator.configure({ failRate: 0.5 });
    const reset = await call(emulator.url, "POST", "/__emulator/reset", { token: null });
    expect(reset.status).toBe(200);
    expect(emulator.requestLog()).toEqual([]);
    expect(emulator.submissions()).toEqual({ total: 0, byModel: {}, byBody: [] });
    expect(emulator.config().failRate).toBe(0);
    expect((await statusOf(emulator.url, id)).status).toBe(404);
  });

  test("changes settings at run time and refuses a bad one, naming it", async () => {
    const changed = await call(emulator.url, "POST", "/__emulator/config", {
      token: null,
      body: { failRate: 0.25, faults: [{ endpoint: "status", kind: "503", times: 2 }] },
    });
    expect(changed.status).toBe(200);
    expect(changed.json.failRate).toBe(0.25);
    expect(emulator.config().faults).toEqual([{ endpoint: "status", kind: "503", times: 2 }]);

    const refused = await call(emulator.url, "POST", "/__emulator/config", {
      token: null,
      body: { failRate: 2 },
    });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toBe("Expected `failRate` to be a number between 0 and 1, got `2`");
    const unknown = await call(emulator.url, "POST", "/__emulator/config", {
      token: null,
      body: { speed: 1 },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toContain("`speed`");
    expect(emulator.config().failRate).toBe(0.25);
  });

  test("never shows the fixed token in its config", async () => {
    const locked = await startEmulator({ token: "fixed-secret" });
    try {
      const config = await call(locked.url, "GET", "/__emulator/config", { token: null });
      expect(config.json.token).toBe("[redacted]");
      expect(config.text).not.toContain("fixed-secret");
    } finally {
      await locked.close();
    }
  });

  test("does not log its own control calls", async () => {
    await call(emulator.url, "GET", "/__emulator/state", { token: null });
    expect(emulator.requestLog()).toEqual([]);
  });
});

describe("starting", () => {
  test("refuses to listen on a host other than loopback", async () => {
    await expect(startEmulator({ host: "0.0.0.0" })).rejects.toThrow(/loopback/);
  });

  test("keeps only a bounded log without bodies when logBodies is off", async () => {
    const emulator = await startEmulator({ logBodies: false });
    try {
      for (let i = 0; i < 1_005; i++) await call(emulator.url, "GET", "/v1/models");
      const log = emulator.requestLog();
      expect(log).toHaveLength(1_000);
      expect(log[0]?.seq).toBe(6);
      expect(log.at(-1)?.seq).toBe(1_005);
      await submitOk(emulator.url, alephInput(emulator.url));
      expect(emulator.requestLog().at(-1)).not.toHaveProperty("body");
      expect(emulator.state().calls.total).toBe(1_006);
    } finally {
      await emulator.close();
    }
  });
});
