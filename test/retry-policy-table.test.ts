/**
 * The step policy (src/engine/step-policy.ts), row by row: for every situation a model step
 * can meet, the decision for a real error object — made by the real client from a real HTTP
 * answer (a loopback server saying exactly what the row is about), or raised by the engine's
 * own signals — then what the decision carries: backoffs with injected randomness, the end
 * when attempts run out or the run stops, resubmitting only when asked.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RunComfyClient } from "../src/api/client.js";
import { RunControl, type StopReason } from "../src/engine/run-control.js";
import {
  AttemptTimeout,
  CancelledWhileQueued,
  createStepPolicy,
  resubmitsUnknown,
  STEP_POLICY,
  STEP_SITUATIONS,
  STEP_TABLE,
  situationOf,
  type AttemptContext,
  type StepDecision,
  type StepEvent,
  type StepSituation,
} from "../src/engine/step-policy.js";
import { closedPortUrl, json, rejectionOf, startTestServer, TOKEN, type TestServer } from "./api-helpers.js";

const MODEL = "runwayml/runway-aleph/video-to-video";
const REQUEST_ID = "9c1e7b2d-0000-4000-8000-000000000001";

/** What the loopback API answers next: a status and a JSON body. */
let next: { status: number; body: unknown } = { status: 200, body: {} };
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer((_request, response) => json(response, next.status, next.body));
});
afterAll(() => server.close());

/** The real client, trying each call once: what it throws is what the engine meets. */
function client(baseUrl = server.url): RunComfyClient {
  return new RunComfyClient({ baseUrl, token: TOKEN, retry: { attempts: 1 }, random: () => 0.5 });
}

async function submitError(status: number, body: unknown): Promise<unknown> {
  next = { status, body };
  return rejectionOf(client().submit(MODEL, { prompt: "a paper boat" }));
}

async function pollError(status: number, body: unknown): Promise<unknown> {
  next = { status, body };
  return rejectionOf(client().status(REQUEST_ID));
}

/** The abort reason RunControl gives its watch signal when the run stops for `reason`. */
function stopReason(reason: StopReason): unknown {
  const control = new RunControl();
  control.stop(reason);
  return control.watchSignal.aborted ? control.watchSignal.reason : control.submitSignal.reason;
}

function context(overrides: Partial<AttemptContext> = {}): AttemptContext {
  return {
    attempt: 1,
    retry: { attempts: 3, backoffMs: 1_000, maxBackoffMs: 60_000 },
    resubmitUnknown: false,
    stopping: false,
    pollFailures: 1,
    random: () => 0.5,
    ...overrides,
  };
}

/**
 * One case per row: how the engine meets it, and the decision the table gives on the first
 * of three attempts. Equal jitter with random 0.5 waits 3/4 of the step: 750 ms is the
 * attempt backoff (1 s base) and the poll backoff (1 s base) alike.
 */
const ROWS: Record<StepSituation, { event: () => Promise<StepEvent>; expected: StepDecision }> = {
  "earlier-submission-unknown": {
    event: () => Promise.resolve({ at: "earlier-submission" }),
    expected: { kind: "unknown", situation: "earlier-submission-unknown" },
  },
  "submit-token-refused": {
    event: async () => ({ at: "submit", error: await submitError(401, { error_code: 400004 }) }),
    expected: { kind: "stop_run", situation: "submit-token-refused", stop: "auth_failed", step: "failed" },
  },
  "submit-no-balance": {
    event: async () => ({ at: "submit", error: await submitError(402, { error_code: 400002 }) }),
    expected: { kind: "stop_run", situation: "submit-no-balance", stop: "no_balance", step: "failed" },
  },
  "submit-input-rejected": {
    event: async () => ({
      at: "submit",
      error: await submitError(422, { detail: [{ loc: ["body", "prompt"], msg: "too long", type: "x" }] }),
    }),
    expected: { kind: "final", situation: "submit-input-rejected", state: "failed", retriesEnded: false },
  },
  "submit-model-not-found": {
    event: async () => ({ at: "submit", error: await submitError(404, { error_code: 400001 }) }),
    expected: { kind: "final", situation: "submit-model-not-found", state: "failed", retriesEnded: false },
  },
  "submit-refused": {
    event: async () => ({ at: "submit", error: await submitError(400, { message: "bad request" }) }),
    expected: { kind: "final", situation: "submit-refused", state: "failed", retriesEnded: false },
  },
  "submit-rate-limited": {
    event: async () => ({ at: "submit", error: await submitError(429, {}) }),
    expected: { kind: "retry", situation: "submit-rate-limited", waitMs: 750, before: "attempt" },
  },
  "submit-not-created": {
    event: async () => ({
      at: "submit",
      error: await rejectionOf(client(await closedPortUrl()).submit(MODEL, {})),
    }),
    expected: { kind: "retry", situation: "submit-not-created", waitMs: 750, before: "attempt" },
  },
  "submit-stopped": {
    event: async () => {
      const control = new RunControl();
      control.stop("cancelled");
      next = { status: 200, body: { request_id: REQUEST_ID } };
      const error = await rejectionOf(client().submit(MODEL, {}, { stopSignal: control.submitSignal }));
      return { at: "submit", error };
    },
    expected: { kind: "stopped", situation: "submit-stopped", cancelQueued: false },
  },
  "submit-answer-lost": {
    event: async () => {
      next = { status: 502, body: {} };
      const outcome = await client().submit(MODEL, {});
      expect(outcome.kind).toBe("unknown");
      return { at: "submit-answer-lost" };
    },
    expected: { kind: "unknown", situation: "submit-answer-lost" },
  },
  "poll-token-refused": {
    event: async () => ({ at: "watch", error: await pollError(403, {}), aborted: false }),
    expected: { kind: "stop_run", situation: "poll-token-refused", stop: "auth_failed", step: "left" },
  },
  "poll-request-gone": {
    event: async () => ({ at: "watch", error: await pollError(404, { error_code: 404001 }), aborted: false }),
    expected: { kind: "final", situation: "poll-request-gone", state: "failed", retriesEnded: false },
  },
  "poll-failed": {
    event: async () => ({ at: "watch", error: await pollError(503, {}), aborted: false }),
    expected: { kind: "retry", situation: "poll-failed", waitMs: 750, before: "poll" },
  },
  "remote-failed": {
    event: () => Promise.resolve({ at: "result", status: "failed" }),
    expected: { kind: "retry", situation: "remote-failed", waitMs: 750, before: "attempt" },
  },
  "remote-empty-success": {
    event: () => Promise.resolve({ at: "result", status: "empty-success" }),
    expected: { kind: "retry", situation: "remote-empty-success", waitMs: 750, before: "attempt" },
  },
  "remote-cancelled": {
    event: () => Promise.resolve({ at: "result", status: "cancelled" }),
    expected: { kind: "final", situation: "remote-cancelled", state: "cancelled", retriesEnded: false },
  },
  "cancelled-while-queued": {
    event: () => Promise.resolve({ at: "watch", error: new CancelledWhileQueued(), aborted: true }),
    expected: { kind: "final", situation: "cancelled-while-queued", state: "cancelled", retriesEnded: false },
  },
  "timed-out": {
    event: () => Promise.resolve({ at: "watch", error: new AttemptTimeout(60_000), aborted: true }),
    expected: { kind: "retry", situation: "timed-out", waitMs: 750, before: "attempt" },
  },
  "interrupted-while-remote": {
    event: () => Promise.resolve({ at: "watch", error: stopReason("interrupted"), aborted: true }),
    expected: { kind: "stopped", situation: "interrupted-while-remote", cancelQueued: true },
  },
  "stopped-while-remote": {
    event: () => Promise.resolve({ at: "watch", error: stopReason("auth_failed"), aborted: true }),
    expected: { kind: "stopped", situation: "stopped-while-remote", cancelQueued: false },
  },
  "download-failed": {
    event: () =>
      Promise.resolve({ at: "download", error: new Error("could not download: HTTP 500"), aborted: false }),
    expected: { kind: "final", situation: "download-failed", state: "failed", retriesEnded: false },
  },
  "download-stopped": {
    event: () => Promise.resolve({ at: "download", error: stopReason("interrupted"), aborted: true }),
    expected: { kind: "stopped", situation: "download-stopped", cancelQueued: false },
  },
};

describe("the step table, row by row", () => {
  test("every row of STEP_TABLE has its case here, and nothing else", () => {
    expect(Object.keys(ROWS).sort()).toEqual([...STEP_SITUATIONS].sort());
    expect(Object.keys(STEP_TABLE).sort()).toEqual([...STEP_SITUATIONS].sort());
  });

  for (const situation of STEP_SITUATIONS) {
    test(`${situation}: ${STEP_TABLE[situation].why}`, async () => {
      const { event, expected } = ROWS[situation];
      const met = await event();
      expect(situationOf(met)).toBe(situation);
      expect(STEP_POLICY.decide(met, context())).toEqual(expected);
    });
  }

  test("a poll that failed for good before the watch was aborted is still a failed poll, whatever the error", async () => {
    // The client throws a plain ApiError for a 400 on /status: not a token, not a gone request.
    const error = await pollError(400, { message: "bad" });
    expect(situationOf({ at: "watch", error, aborted: false })).toBe("poll-failed");
    // An abort for a reason of nobody's making ends the watch, never polls again.
    expect(situationOf({ at: "watch", error: new Error("odd"), aborted: true })).toBe("stopped-while-remote");
  });
});

describe("what a decision carries", () => {
  const remoteFailure: StepEvent = { at: "result", status: "failed" };

  test("an attempt backoff grows with the attempt under the step's retry settings, capped", () => {
    const waits = [1, 2, 3, 4].map((attempt) => {
      const decided = STEP_POLICY.decide(
        remoteFailure,
        context({ attempt, retry: { attempts: 9, backoffMs: 1_000, maxBackoffMs: 3_000 } }),
      );
      return decided.kind === "retry" ? decided.waitMs : undefined;
    });
    expect(waits).toEqual([750, 1_500, 2_250, 2_250]);
  });

  test("the last attempt, or a stopping run, ends the step in the row's state", () => {
    expect(STEP_POLICY.decide(remoteFailure, context({ attempt: 3 }))).toEqual({
      kind: "final",
      situation: "remote-failed",
      state: "failed",
      retriesEnded: true,
    });
    const timeout: StepEvent = { at: "watch", error: new AttemptTimeout(1_000), aborted: true };
    expect(STEP_POLICY.decide(timeout, context({ stopping: true }))).toEqual({
      kind: "final",
      situation: "timed-out",
      state: "timed_out",
      retriesEnded: true,
    });
  });

  test("a failed poll keeps polling past the step's attempts, on the poll backoff", () => {
    const poll: StepEvent = { at: "watch", error: new Error("socket hang up"), aborted: false };
    expect(STEP_POLICY.decide(poll, context({ attempt: 3, pollFailures: 3 }))).toEqual({
      kind: "retry",
      situation: "poll-failed",
      waitMs: 3_000,
      before: "poll",
    });
    expect(STEP_POLICY.decide(poll, context({ pollFailures: 20 }))).toMatchObject({ waitMs: 22_500 });
  });

  test("a submission that may have been created is sent again only when asked, and then like a retry ending `unknown`", () => {
    const lost: StepEvent = { at: "submit-answer-lost" };
    expect(STEP_POLICY.decide(lost, context()).kind).toBe("unknown");
    expect(STEP_POLICY.decide(lost, context({ resubmitUnknown: true }))).toEqual({
      kind: "retry",
      situation: "submit-answer-lost",
      waitMs: 750,
      before: "attempt",
    });
    expect(STEP_POLICY.decide(lost, context({ resubmitUnknown: true, attempt: 3 }))).toEqual({
      kind: "final",
      situation: "submit-answer-lost",
      state: "unknown",
      retriesEnded: true,
    });
    // An earlier run's: submitted at once when asked, without a wait.
    expect(
      STEP_POLICY.decide({ at: "earlier-submission" }, context({ attempt: 0, resubmitUnknown: true })),
    ).toEqual({ kind: "retry", situation: "earlier-submission-unknown", waitMs: 0, before: "attempt" });
  });

  test("resubmitting is asked for by the run's option or the step's retry.resubmit_unknown", () => {
    expect(resubmitsUnknown(false, { resubmitUnknown: false })).toBe(false);
    expect(resubmitsUnknown(true, { resubmitUnknown: false })).toBe(true);
    expect(resubmitsUnknown(false, { resubmitUnknown: true })).toBe(true);
  });

  test("a policy reads the table it is given: changing a row changes the decision", () => {
    const policy = createStepPolicy({
      ...STEP_TABLE,
      "remote-failed": { decision: "final", endsIn: "failed", why: "never retried" },
    });
    expect(policy.decide(remoteFailure, context())).toEqual({
      kind: "final",
      situation: "remote-failed",
      state: "failed",
      retriesEnded: false,
    });
  });
});
