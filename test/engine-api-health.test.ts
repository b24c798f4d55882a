/**
 * The run's judgement of whether the API answers (src/engine/api-health.ts), and the
 * scheduler telling why a request does not start at once (src/engine/scheduler.ts): the
 * engine's side of "why things wait" (issue 15 item 7).
 */
import { describe, expect, it } from "vitest";
import {
  ApiAuthError,
  ApiError,
  InputRejectedError,
  RateLimitedError,
  RequestNotFoundError,
  ServerError,
  TransportError,
} from "../src/api/errors.js";
import {
  ApiHealth,
  apiHealthMonitor,
  isTransientApiFailure,
  type ApiHealthChange,
} from "../src/engine/api-health.js";
import type { WaitReason } from "../src/engine/events.js";
import { RequestScheduler } from "../src/engine/scheduler.js";

const serverError = () => new ServerError({ phase: "status", status: 502 }, undefined);

describe("isTransientApiFailure", () => {
  it("is the client's 'try again later' errors, whatever the status: 5xx, 429, no answer, an unusable answer", () => {
    expect(isTransientApiFailure(serverError())).toBe(true);
    expect(isTransientApiFailure(new RateLimitedError({ phase: "status", status: 429 }, 1_000))).toBe(true);
    expect(
      isTransientApiFailure(
        new TransportError({ phase: "status" }, "http://127.0.0.1:1", "ECONNREFUSED", null),
      ),
    ).toBe(true);
    // An answer that cannot be used (HTML 502 page, cut JSON, empty 200): the api client's code for it.
    expect(
      isTransientApiFailure(
        new ApiError({ phase: "status", status: 200 }, "unusable", { code: "api_unusable_answer" }),
      ),
    ).toBe(true);
  });

  it("is not an answer about one call: a refused input, a lost request, the token, or a bug", () => {
    expect(isTransientApiFailure(new RequestNotFoundError({ phase: "status", status: 404 }))).toBe(false);
    expect(isTransientApiFailure(new InputRejectedError({ phase: "submit", status: 422 }, "bad", []))).toBe(
      false,
    );
    expect(isTransientApiFailure(new ApiAuthError({ phase: "status", status: 401 }, undefined))).toBe(false);
    expect(isTransientApiFailure(new Error("ECONNREFUSED"))).toBe(false);
  });
});

describe("ApiHealth", () => {
  it("turns unreachable once after `threshold` failures in a row, and recovered once at the next answer", () => {
    const health = new ApiHealth(3);
    expect(health.failed(1_000, "HTTP 503")).toBeUndefined();
    expect(health.failed(2_000, "HTTP 503")).toBeUndefined();
    expect(health.failed(3_000, "no answer (ECONNREFUSED)")).toEqual({
      kind: "unreachable",
      since: 1_000,
      failures: 3,
      error: "no answer (ECONNREFUSED)",
    });
    // Still down: said once, not once per failure.
    expect(health.failed(4_000, "HTTP 503")).toBeUndefined();
    expect(health.unreachable).toBe(true);
    expect(health.answered()).toEqual({ kind: "recovered", since: 1_000 });
    expect(health.answered()).toBeUndefined();
    expect(health.unreachable).toBe(false);
  });

  it("needs the failures in a row: an answer in between starts the count again", () => {
    const health = new ApiHealth(2);
    expect(health.failed(1_000, "HTTP 503")).toBeUndefined();
    expect(health.answered()).toBeUndefined();
    expect(health.failed(2_000, "HTTP 503")).toBeUndefined();
    expect(health.failed(3_000, "HTTP 503")).toMatchObject({ kind: "unreachable", since: 2_000 });
  });

  it("dates the outage from the caller's last answer, the earliest of the streak", () => {
    const health = new ApiHealth(2);
    health.failed(10_000, "HTTP 503", 4_000);
    expect(health.failed(11_000, "HTTP 503", 2_000)).toMatchObject({ since: 2_000 });
  });
});

describe("apiHealthMonitor", () => {
  it("counts transient failures, takes a refusal as an answer, and ignores what is not an API error", () => {
    const changes: [ApiHealthChange, number][] = [];
    let now = 0;
    const monitor = apiHealthMonitor(
      new ApiHealth(2),
      () => now,
      (change, at) => changes.push([change, at]),
    );
    now = 1_000;
    monitor.failed(serverError());
    // A bug is not the API's health.
    monitor.failed(new Error("boom"));
    now = 2_000;
    monitor.failed(serverError(), 500);
    expect(changes).toEqual([
      [
        {
          kind: "unreachable",
          since: 500,
          failures: 2,
          error: "the RunComfy API failed the status call (HTTP 502) (Bad Gateway)",
        },
        2_000,
      ],
    ]);
    now = 3_000;
    // A 404 is an answer: the API is there.
    monitor.failed(new RequestNotFoundError({ phase: "status", status: 404 }));
    expect(changes[1]).toEqual([{ kind: "recovered", since: 500 }, 3_000]);
    monitor.answered();
    expect(changes).toHaveLength(2);
  });
});

describe("RequestScheduler", () => {
  it("says a request waits for its model's limit, then for a slot of the run, and nothing when one is free", async () => {
    const scheduler = new RequestScheduler(1, { aleph: 1 });
    const waits: [string, WaitReason][] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const first = new Promise<void>((resolve) => (started = resolve));
    const a = scheduler.run(
      "aleph",
      async () => {
        started();
        await held;
      },
      (reason) => waits.push(["a", reason]),
    );
    await first;
    // The model's one slot is taken: the next of that model waits for its limit.
    const b = scheduler.run(
      "aleph",
      async () => {},
      (reason) => waits.push(["b", reason]),
    );
    // Another model has no limit, but the run's one slot is taken.
    const c = scheduler.run(
      "hailuo",
      async () => {},
      (reason) => waits.push(["c", reason]),
    );
    expect(waits).toEqual([
      ["b", { kind: "limit", model: "aleph", limit: 1 }],
      ["c", { kind: "concurrency", concurrency: 1 }],
    ]);
    release();
    await Promise.all([a, b, c]);
  });
});
