import { describe, expect, test } from "vitest";
import type { AttemptKey, SqliteStore } from "../src/store/index.js";
import { EMBEDDED_EMULATOR_ORIGIN } from "../src/api/origin.js";
import { unfinishedElsewhere, unfinishedRequest } from "../src/engine/prior-runs.js";
import { open, seedRun, spawnStoreChild, tempDbPath, TEST_ORIGIN } from "./store-helpers.js";

const CAT = "teaser/cat/animate";
const DOG = "teaser/dog/animate";

function start(
  store: SqliteStore,
  runId: string,
  address: string,
  attempt: number,
  startedAt = 2_000,
): AttemptKey {
  store.startAttempt({
    runId,
    address,
    attempt,
    workflowName: "teasers",
    fingerprint: `fp-${address}`,
    startedAt,
  });
  return { runId, address, attempt };
}

describe("attempts", () => {
  test("starting an attempt records it as submitting and makes the step mirror it", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    start(store, "run-1", CAT, 1);

    expect(store.getAttempts("run-1", CAT)).toEqual([
      {
        runId: "run-1",
        address: CAT,
        attempt: 1,
        workflowName: "teasers",
        fingerprint: `fp-${CAT}`,
        requestId: undefined,
        state: "submitting",
        queuePosition: undefined,
        error: undefined,
        reattachedFromRun: undefined,
        startedAt: 2_000,
        submittedAt: undefined,
        finishedAt: undefined,
        apiOrigin: TEST_ORIGIN,
      },
    ]);
    expect(store.getStep("run-1", CAT)).toMatchObject({ attempt: 1, requestId: undefined });
  });

  test("a request id is recorded on the attempt and on its step", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    const key = start(store, "run-1", CAT, 1);
    store.recordRequestId(key, "req-cat-1", 2_100);

    expect(store.getAttempts("run-1", CAT)[0]).toMatchObject({
      state: "submitted",
      requestId: "req-cat-1",
      submittedAt: 2_100,
    });
    expect(store.getStep("run-1", CAT)?.requestId).toBe("req-cat-1");
  });

  test("a request id and the step's new state are written in one commit, or neither is", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT, DOG]);
    const key = start(store, "run-1", CAT, 1);
    store.recordRequestId(key, "req-cat-1", 2_100, { state: "in_queue", updatedAt: 2_100, queuePosition: 4 });
    expect(store.getStep("run-1", CAT)).toMatchObject({
      state: "in_queue",
      requestId: "req-cat-1",
      queuePosition: 4,
    });
    expect(store.getAttempts("run-1", CAT)[0]).toMatchObject({ state: "submitted", requestId: "req-cat-1" });

    // No attempt 7: the step's state is not written either.
    const before = store.getStep("run-1", DOG);
    expect(() =>
      store.recordRequestId({ runId: "run-1", address: DOG, attempt: 7 }, "req-x", 2_200, {
        state: "in_queue",
        updatedAt: 2_200,
      }),
    ).toThrow(/no attempt 7/);
    expect(store.getStep("run-1", DOG)).toEqual(before);
  });

  test("a new attempt clears the previous attempt's request id from the step", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    store.recordRequestId(start(store, "run-1", CAT, 1), "req-1", 2_100);
    store.updateAttempt(
      { runId: "run-1", address: CAT, attempt: 1 },
      { state: "failed", error: "boom", finishedAt: 3 },
    );
    start(store, "run-1", CAT, 2, 4_000);

    expect(store.getStep("run-1", CAT)).toMatchObject({ attempt: 2, requestId: undefined });
    expect(store.getAttempts("run-1", CAT).map((a) => [a.attempt, a.state, a.requestId])).toEqual([
      [1, "failed", "req-1"],
      [2, "submitting", undefined],
    ]);
  });

  test("recordRequestId refuses to run inside a transaction, where its commit would come too late", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    const key = start(store, "run-1", CAT, 1);
    expect(() => store.transaction(() => store.recordRequestId(key, "req-1", 2_100))).toThrow(/on its own/);
    expect(() => store.recordRequestId({ ...key, attempt: 7 }, "req-1", 2_100)).toThrow(/no attempt 7/);
  });

  test("an attempt update changes only what it names", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    const key = start(store, "run-1", CAT, 1);
    store.recordRequestId(key, "req-1", 2_100);
    store.updateAttempt(key, { state: "in_queue", queuePosition: 3 });
    store.updateAttempt(key, { state: "in_progress", queuePosition: null });
    store.updateAttempt(key, { state: "succeeded", finishedAt: 9_000 });

    expect(store.getAttempts("run-1")[0]).toMatchObject({
      state: "succeeded",
      requestId: "req-1",
      queuePosition: undefined,
      submittedAt: 2_100,
      finishedAt: 9_000,
    });
    expect(() => store.updateAttempt({ ...key, attempt: 2 }, { state: "failed" })).toThrow(/no attempt 2/);
  });

  test("a recorded request id is visible at once to a second connection on the same file", () => {
    const dbPath = tempDbPath();
    const writer = open(dbPath);
    const reader = open(dbPath);
    seedRun(writer, {}, [CAT]);
    const key = start(writer, "run-1", CAT, 1);
    writer.recordRequestId(key, "req-seen", 2_100);

    expect(reader.getAttempts("run-1", CAT)[0]?.requestId).toBe("req-seen");
  });

  test("a request id survives the process being killed right after recording it", async () => {
    const dbPath = tempDbPath();
    const store = open(dbPath);
    seedRun(store, {}, [CAT]);
    start(store, "run-1", CAT, 1);

    const child = spawnStoreChild(
      dbPath,
      `store.recordRequestId({ runId: "run-1", address: ${JSON.stringify(CAT)}, attempt: 1 }, "req-before-crash", 2_100);
       process.kill(process.pid, "SIGKILL");`,
    );
    const result = await child.exited;

    expect(result).toMatchObject({ signal: "SIGKILL", stderr: "" });
    const after = open(dbPath);
    expect(after.getAttempts("run-1", CAT)[0]).toMatchObject({
      state: "submitted",
      requestId: "req-before-crash",
    });
    expect(after.findInFlight("teasers", `fp-${CAT}`)?.disposition).toBe("reattach");
  });
});

describe("in-flight attempts (resume)", () => {
  test("an unfinished attempt with a request id is re-attached; one without is maybe billed", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT, DOG]);
    store.recordRequestId(start(store, "run-1", CAT, 1), "req-cat", 2_100);
    store.updateAttempt(
      { runId: "run-1", address: CAT, attempt: 1 },
      { state: "in_queue", queuePosition: 2 },
    );
    start(store, "run-1", DOG, 1);

    expect(store.listInFlight("teasers")).toEqual([
      {
        runId: "run-1",
        address: CAT,
        attempt: 1,
        fingerprint: `fp-${CAT}`,
        state: "in_queue",
        requestId: "req-cat",
        disposition: "reattach",
        startedAt: 2_000,
        submittedAt: 2_100,
        apiOrigin: TEST_ORIGIN,
      },
      {
        runId: "run-1",
        address: DOG,
        attempt: 1,
        fingerprint: `fp-${DOG}`,
        state: "submitting",
        requestId: undefined,
        disposition: "maybe_billed",
        startedAt: 2_000,
        submittedAt: undefined,
        apiOrigin: TEST_ORIGIN,
      },
    ]);
    expect(store.findInFlight("teasers", `fp-${CAT}`)?.requestId).toBe("req-cat");
    expect(store.findInFlight("teasers", `fp-${DOG}`)?.disposition).toBe("maybe_billed");
    expect(store.listInFlight("other-workflow")).toEqual([]);
    expect(store.findInFlight("other-workflow", `fp-${CAT}`)).toBeUndefined();
  });

  test("an attempt whose answer was lost stays maybe billed in every later apply", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    const key = start(store, "run-1", CAT, 1);
    store.updateAttempt(key, {
      state: "unknown",
      error: "connection reset after sending",
      finishedAt: 2_500,
    });
    seedRun(store, { id: "run-2", startedAt: 5_000 }, [CAT]);

    expect(store.findInFlight("teasers", `fp-${CAT}`)).toMatchObject({
      runId: "run-1",
      state: "unknown",
      disposition: "maybe_billed",
    });
  });

  test("finished attempts are not in flight", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT, DOG]);
    const cat = start(store, "run-1", CAT, 1);
    store.recordRequestId(cat, "req-cat", 2_100);
    store.updateAttempt(cat, { state: "succeeded", finishedAt: 3_000 });
    const dog = start(store, "run-1", DOG, 1);
    store.recordRequestId(dog, "req-dog", 2_100);
    store.updateAttempt(dog, { state: "cancelled", finishedAt: 3_000 });

    expect(store.listInFlight("teasers")).toEqual([]);
  });

  test("a later run that re-attaches takes the attempt over, so it is found once, in the newest run", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    store.recordRequestId(start(store, "run-1", CAT, 1), "req-cat", 2_100);
    seedRun(store, { id: "run-2", startedAt: 5_000 }, [CAT]);
    store.startAttempt({
      runId: "run-2",
      address: CAT,
      attempt: 1,
      workflowName: "teasers",
      fingerprint: `fp-${CAT}`,
      startedAt: 5_100,
      reattach: { requestId: "req-cat", fromRunId: "run-1" },
    });

    expect(store.getAttempts("run-2", CAT)[0]).toMatchObject({
      state: "submitted",
      requestId: "req-cat",
      reattachedFromRun: "run-1",
      submittedAt: 5_100,
    });
    expect(store.getStep("run-2", CAT)?.requestId).toBe("req-cat");
    expect(store.listInFlight("teasers").map((a) => [a.runId, a.requestId])).toEqual([["run-2", "req-cat"]]);

    store.updateAttempt(
      { runId: "run-2", address: CAT, attempt: 1 },
      { state: "succeeded", finishedAt: 6_000 },
    );
    expect(store.listInFlight("teasers")).toEqual([]);
  });

  test("a deliberate resubmission of a maybe-billed attempt replaces it", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT]);
    start(store, "run-1", CAT, 1);
    const second = start(store, "run-1", CAT, 2, 3_000);
    store.recordRequestId(second, "req-2", 3_100);

    expect(store.listInFlight("teasers").map((a) => [a.attempt, a.disposition])).toEqual([[2, "reattach"]]);
  });

  test("findInFlight narrowed to an address ignores the same fingerprint elsewhere", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, [CAT, DOG]);
    store.startAttempt({
      runId: "run-1",
      address: CAT,
      attempt: 1,
      workflowName: "teasers",
      fingerprint: "same",
      startedAt: 1,
    });
    store.startAttempt({
      runId: "run-1",
      address: DOG,
      attempt: 1,
      workflowName: "teasers",
      fingerprint: "same",
      startedAt: 2,
    });
    store.recordRequestId({ runId: "run-1", address: CAT, attempt: 1 }, "req-cat", 3);
    store.recordRequestId({ runId: "run-1", address: DOG, attempt: 1 }, "req-dog", 4);

    expect(store.findInFlight("teasers", "same", CAT)?.requestId).toBe("req-cat");
    expect(store.findInFlight("teasers", "same", DOG)?.requestId).toBe("req-dog");
    expect(store.findInFlight("teasers", "same")?.requestId).toBe("req-dog");
    expect(store.findInFlight("teasers", "same", "teaser/cow/animate")).toBeUndefined();
  });
});

describe("in-flight attempts of several API origins", () => {
  const REAL = "https://model-api.runcomfy.net";
  const start1 = (store: SqliteStore, runId: string, requestId: string | undefined) => {
    const key = { runId, address: CAT, attempt: 1 };
    store.startAttempt({ ...key, workflowName: "teasers", fingerprint: "fp", startedAt: 2_000 });
    if (requestId) store.recordRequestId(key, requestId, 2_100);
  };

  test("an attempt carries its run's origin, and only a later attempt at the same origin takes it over", () => {
    const store = open(tempDbPath());
    seedRun(store, { id: "at-runcomfy", apiOrigin: REAL }, [CAT]);
    start1(store, "at-runcomfy", "req-real");
    // A run at the emulator then sends the same step there: the RunComfy request is still open.
    seedRun(store, { id: "at-emulator", apiOrigin: EMBEDDED_EMULATOR_ORIGIN, startedAt: 3_000 }, [CAT]);
    start1(store, "at-emulator", "req-emu");

    expect(store.getAttempts("at-runcomfy")[0]?.apiOrigin).toBe(REAL);
    expect(store.inFlightAt("teasers", "fp", CAT).map((a) => [a.runId, a.apiOrigin, a.requestId])).toEqual([
      ["at-emulator", EMBEDDED_EMULATOR_ORIGIN, "req-emu"],
      ["at-runcomfy", REAL, "req-real"],
    ]);

    seedRun(store, { id: "at-runcomfy-2", apiOrigin: REAL, startedAt: 4_000 }, [CAT]);
    store.startAttempt({
      runId: "at-runcomfy-2",
      address: CAT,
      attempt: 1,
      workflowName: "teasers",
      fingerprint: "fp",
      startedAt: 4_000,
      reattach: { requestId: "req-real", fromRunId: "at-runcomfy" },
    });
    expect(store.inFlightAt("teasers", "fp", CAT).map((a) => a.runId)).toEqual([
      "at-runcomfy-2",
      "at-emulator",
    ]);
  });

  test("what a run at one origin makes of another's unfinished requests: collected only where they were made; held when both could bill", () => {
    const store = open(tempDbPath());
    seedRun(store, { id: "at-runcomfy", apiOrigin: REAL }, [CAT]);
    start1(store, "at-runcomfy", "req-real");

    expect(unfinishedRequest(store, "teasers", "fp", CAT, REAL)).toMatchObject({
      kind: "reattach",
      runId: "at-runcomfy",
      requestId: "req-real",
    });
    // Through another base URL it may be the same account: sending it could pay twice.
    expect(unfinishedRequest(store, "teasers", "fp", CAT, "https://proxy.example")).toEqual({
      kind: "elsewhere",
      runId: "at-runcomfy",
      requestId: "req-real",
      apiOrigin: REAL,
    });
    // The emulator bills nothing: it neither polls RunComfy's id nor is held by it.
    expect(unfinishedRequest(store, "teasers", "fp", CAT, EMBEDDED_EMULATOR_ORIGIN)).toBeUndefined();
    expect(unfinishedRequest(store, "teasers", "fp", CAT, "http://127.0.0.1:8787")).toBeUndefined();

    // A request at an emulator holds nothing at RunComfy.
    const emulated = open(tempDbPath());
    seedRun(emulated, { id: "at-emulator", apiOrigin: "http://127.0.0.1:8787" }, [CAT]);
    start1(emulated, "at-emulator", "req-emu");
    expect(unfinishedRequest(emulated, "teasers", "fp", CAT, REAL)).toBeUndefined();
    expect(unfinishedElsewhere(emulated, "teasers", REAL)).toEqual([
      "run at-emulator has 1 request made at the emulator at http://127.0.0.1:8787 still unfinished; " +
        "this run does not collect them (this run sends their steps here); apply against that API to collect them",
    ]);

    // The embedded emulator's requests ended with the apply that started it: nothing to
    // re-attach to, nothing to collect elsewhere.
    const embedded = open(tempDbPath());
    seedRun(embedded, { id: "tried", apiOrigin: EMBEDDED_EMULATOR_ORIGIN }, [CAT]);
    start1(embedded, "tried", "req-gone");
    expect(unfinishedRequest(embedded, "teasers", "fp", CAT, EMBEDDED_EMULATOR_ORIGIN)).toBeUndefined();
    expect(unfinishedElsewhere(embedded, "teasers", REAL)).toEqual([]);

    // A request whose origin was never recorded may be RunComfy's: held there, like any other.
    const unrecorded = open(tempDbPath());
    seedRun(unrecorded, { id: "old", apiOrigin: undefined }, [CAT]);
    start1(unrecorded, "old", undefined);
    expect(unfinishedRequest(unrecorded, "teasers", "fp", CAT, REAL)).toMatchObject({
      kind: "elsewhere",
      apiOrigin: undefined,
    });
  });
});

describe("typical durations", () => {
  test("are the median server duration of the model's latest succeeded requests, across runs, and their spread", () => {
    const store = open(tempDbPath());
    expect(store.typicalDuration("minimax/Hailuo Video 01 Live", TEST_ORIGIN)).toBeUndefined();
    const addresses = Array.from({ length: 25 }, (_, i) => `teaser/i${i}/animate`);
    seedRun(store, { id: "run-old" }, addresses.slice(0, 5));
    seedRun(store, { id: "run-new", startedAt: 5_000 }, addresses.slice(5));
    // Five old requests of 90 s, then twenty of 40–59 s: only the latest twenty count.
    addresses.forEach((address, i) => {
      const key = start(store, i < 5 ? "run-old" : "run-new", address, 1);
      store.recordRequestId(key, `req-${i}`, 2_100);
      store.updateAttempt(key, {
        state: "succeeded",
        finishedAt: 3_000,
        serverMs: i < 5 ? 90_000 : 40_000 + (i - 5) * 1_000,
      });
    });
    // A failed request says nothing about how long a success takes.
    seedRun(store, { id: "run-failed", startedAt: 9_000 }, ["teaser/x/animate"]);
    const failed = start(store, "run-failed", "teaser/x/animate", 1);
    store.updateAttempt(failed, { state: "failed", finishedAt: 3_000 });

    // 40–59 s: the median 49 s, each 5 s from it on average (9 … 1, 0, 1 … 10 s).
    expect(store.typicalDuration("minimax/Hailuo Video 01 Live", TEST_ORIGIN)).toEqual({
      ms: 49_000,
      spreadMs: 5_000,
    });
    expect(store.typicalDuration("runwayml/runway-aleph/video-to-video", TEST_ORIGIN)).toBeUndefined();
  });
});
