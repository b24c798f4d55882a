import { hostname } from "node:os";
import { describe, expect, expectTypeOf, test } from "vitest";
import type { RunStatus as EngineRunStatus } from "../src/engine/events.js";
import { StepState } from "../src/engine/states.js";
import { STORED_STEP_STATES, type RunOutcome, type StoredStepState } from "../src/store/index.js";
import { modelStep, newRun, open, seedRun, tempDbPath } from "./store-helpers.js";

describe("runs", () => {
  test("a created run is running, keeps its plan and options, and is finished with its result", () => {
    const store = open(tempDbPath());
    const plan = { jobs: { teaser: ["cat", "dog"] }, bodies: [{ prompt: "a cat", ratio: "1280:720" }] };
    store.createRun(newRun({ plan, options: { concurrency: 8, fresh: false } }));

    expect(store.getRun("run-1")).toMatchObject({
      status: "running",
      exitCode: undefined,
      finishedAt: undefined,
      options: { concurrency: 8, fresh: false },
      hostname: "host-a",
      pid: process.pid,
    });
    expect(store.getRunPlan("run-1")).toEqual(plan);

    store.finishRun("run-1", {
      status: "failed",
      exitCode: 1,
      finishedAt: 9_000,
      counts: { succeeded: 3, failed: 1 },
    });
    expect(store.getRun("run-1")).toMatchObject({
      status: "failed",
      exitCode: 1,
      finishedAt: 9_000,
      counts: { succeeded: 3, failed: 1 },
    });
  });

  test("a retry remembers the run it retries", () => {
    const store = open(tempDbPath());
    store.createRun(newRun());
    store.createRun(newRun({ id: "run-2", kind: "retry", parentRunId: "run-1", startedAt: 2_000 }));
    expect(store.getRun("run-2")).toMatchObject({ kind: "retry", parentRunId: "run-1" });
  });

  test("latest and history are newest first, per workflow or across all", () => {
    const store = open(tempDbPath());
    store.createRun(newRun({ id: "a1", workflowName: "a", startedAt: 1_000 }));
    store.createRun(newRun({ id: "b1", workflowName: "b", startedAt: 2_000 }));
    store.createRun(newRun({ id: "a2", workflowName: "a", startedAt: 3_000 }));

    expect(store.latestRun()?.id).toBe("a2");
    expect(store.latestRun("b")?.id).toBe("b1");
    expect(store.latestRun("nope")).toBeUndefined();
    expect(store.listRuns({ limit: 10 }).map((r) => r.id)).toEqual(["a2", "b1", "a1"]);
    expect(store.listRuns({ limit: 2 }).map((r) => r.id)).toEqual(["a2", "b1"]);
    expect(store.listRuns({ limit: 10, workflowName: "a" }).map((r) => r.id)).toEqual(["a2", "a1"]);
  });

  test("a cancel request is recorded once, at the first request", () => {
    const store = open(tempDbPath());
    store.createRun(newRun());
    store.requestCancel("run-1", 5_000);
    store.requestCancel("run-1", 6_000);
    expect(store.getRun("run-1")?.cancelRequestedAt).toBe(5_000);
    expect(() => store.requestCancel("missing", 1)).toThrow(/no run missing/);
  });

  test("an unknown run has no record and no plan", () => {
    const store = open(tempDbPath());
    expect(store.getRun("missing")).toBeUndefined();
    expect(store.getRunPlan("missing")).toBeUndefined();
    expect(() =>
      store.finishRun("missing", { status: "succeeded", exitCode: 0, finishedAt: 1, counts: {} }),
    ).toThrow(/no run missing/);
  });
});

describe("steps", () => {
  test("bulk-inserts 100,000 steps in one call and reads them back in plan order", () => {
    const store = open(tempDbPath());
    store.createRun(newRun());
    const steps = Array.from({ length: 100_000 }, (_, i) => modelStep(`teaser/item-${i}/animate`));
    store.insertSteps("run-1", steps, 1_000);

    expect(store.countStepsByState("run-1")).toEqual({ pending: 100_000 });
    const all = store.getSteps("run-1");
    expect(all).toHaveLength(100_000);
    expect(all[0]?.address).toBe("teaser/item-0/animate");
    expect(all[99_999]?.address).toBe("teaser/item-99999/animate");
  });

  test("a failing row rolls back the whole bulk insert", () => {
    const store = open(tempDbPath());
    store.createRun(newRun());
    const duplicate = [modelStep("j/a/s"), modelStep("j/b/s"), modelStep("j/a/s")];
    expect(() => store.insertSteps("run-1", duplicate, 1_000)).toThrow(/UNIQUE/);
    expect(store.getSteps("run-1")).toEqual([]);
  });

  test("a new step starts with its identity, input and no attempts", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, ["teaser/cat/animate"]);
    expect(store.getStep("run-1", "teaser/cat/animate")).toEqual({
      runId: "run-1",
      address: "teaser/cat/animate",
      jobId: "teaser",
      instanceKey: "cat",
      stepId: "animate",
      kind: "model",
      model: "minimax/Hailuo Video 01 Live",
      state: "pending",
      attempt: 0,
      fingerprint: "fp-teaser/cat/animate",
      input: { prompt: "prompt of teaser/cat/animate", image_url: "https://media.example/cat.png" },
      output: undefined,
      files: undefined,
      stdout: undefined,
      error: undefined,
      requestId: undefined,
      reusedFromRun: undefined,
      queuePosition: undefined,
      createdAt: 1_000,
      startedAt: undefined,
      finishedAt: undefined,
      updatedAt: 1_000,
    });
  });

  test("a step reused at planning time is stored already reused, with what it took over", () => {
    const store = open(tempDbPath());
    store.createRun(newRun({ id: "run-2" }));
    store.insertSteps(
      "run-2",
      [
        modelStep("teaser/cat/animate", {
          state: "reused",
          reusedFromRun: "run-1",
          requestId: "req-1",
          output: { video: "https://cdn.example/v.mp4" },
          files: { video: "outputs/teasers/cat/animate.mp4" },
          finishedAt: 900,
        }),
      ],
      1_000,
    );
    expect(store.getStep("run-2", "teaser/cat/animate")).toMatchObject({
      state: "reused",
      reusedFromRun: "run-1",
      requestId: "req-1",
      output: { video: "https://cdn.example/v.mp4" },
      files: { video: "outputs/teasers/cat/animate.mp4" },
      finishedAt: 900,
    });
  });

  test("an update changes only the columns it names; null clears one", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, ["teaser/cat/animate"]);
    const at = "teaser/cat/animate";

    store.updateStep("run-1", at, {
      updatedAt: 2_000,
      state: "in_queue",
      queuePosition: 4,
      startedAt: 2_000,
    });
    store.updateStep("run-1", at, {
      updatedAt: 3_000,
      state: "failed",
      error: "remote failure",
      queuePosition: null,
    });
    expect(store.getStep("run-1", at)).toMatchObject({
      state: "failed",
      error: "remote failure",
      queuePosition: undefined,
      startedAt: 2_000,
      updatedAt: 3_000,
      input: { prompt: "prompt of teaser/cat/animate", image_url: "https://media.example/cat.png" },
    });

    store.updateStep("run-1", at, {
      updatedAt: 4_000,
      state: "succeeded",
      error: null,
      attempt: 2,
      output: { videos: ["https://cdn.example/1.mp4", "https://cdn.example/2.mp4"] },
      files: { videos: ["out/animate-1.mp4", "out/animate-2.mp4"] },
      finishedAt: 4_000,
    });
    expect(store.getStep("run-1", at)).toMatchObject({
      state: "succeeded",
      error: undefined,
      attempt: 2,
      output: { videos: ["https://cdn.example/1.mp4", "https://cdn.example/2.mp4"] },
      files: { videos: ["out/animate-1.mp4", "out/animate-2.mp4"] },
      finishedAt: 4_000,
      startedAt: 2_000,
    });
  });

  test("a run step records its late fingerprint, argv and stdout", () => {
    const store = open(tempDbPath());
    store.createRun(newRun());
    store.insertSteps(
      "run-1",
      [
        {
          address: "teaser/cat/poster",
          jobId: "teaser",
          instanceKey: "cat",
          stepId: "poster",
          kind: "run",
          state: "pending",
        },
      ],
      1_000,
    );
    store.updateStep("run-1", "teaser/cat/poster", {
      updatedAt: 2_000,
      state: "succeeded",
      fingerprint: "fp-poster",
      input: ["ffmpeg", "-y", "-i", "animate.mp4", "poster.jpg"],
      stdout: "frame=1\n",
      files: { poster: "outputs/teasers/cat/poster.jpg" },
    });
    expect(store.getStep("run-1", "teaser/cat/poster")).toMatchObject({
      kind: "run",
      model: undefined,
      fingerprint: "fp-poster",
      input: ["ffmpeg", "-y", "-i", "animate.mp4", "poster.jpg"],
      stdout: "frame=1\n",
    });
  });

  test("updating a step that does not exist is an error, not a silent no-op", () => {
    const store = open(tempDbPath());
    store.createRun(newRun());
    expect(() => store.updateStep("run-1", "x/y/z", { updatedAt: 1, state: "failed" })).toThrow(
      /no step x\/y\/z/,
    );
  });

  test("steps can be filtered by state and counted per state", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, ["j/a/s", "j/b/s", "j/c/s", "j/d/s"]);
    store.updateStep("run-1", "j/b/s", { updatedAt: 2, state: "failed", error: "boom" });
    store.updateStep("run-1", "j/c/s", { updatedAt: 2, state: "timed_out" });
    store.updateStep("run-1", "j/d/s", { updatedAt: 2, state: "succeeded" });

    expect(store.getSteps("run-1", { states: ["failed", "timed_out"] }).map((s) => s.address)).toEqual([
      "j/b/s",
      "j/c/s",
    ]);
    expect(store.getSteps("run-1", { states: [] })).toEqual([]);
    expect(store.countStepsByState("run-1")).toEqual({ pending: 1, failed: 1, timed_out: 1, succeeded: 1 });
  });

  test("a transaction commits its writes together or not at all", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, ["j/a/s", "j/b/s"]);
    expect(() =>
      store.transaction(() => {
        store.updateStep("run-1", "j/a/s", { updatedAt: 2, state: "succeeded" });
        store.updateStep("run-1", "j/missing/s", { updatedAt: 2, state: "succeeded" });
      }),
    ).toThrow();
    expect(store.getStep("run-1", "j/a/s")?.state).toBe("pending");

    const value = store.transaction(() => {
      store.updateStep("run-1", "j/a/s", { updatedAt: 3, state: "succeeded" });
      return store.transaction(() => store.getStep("run-1", "j/a/s")?.state);
    });
    expect(value).toBe("succeeded");
  });

  test("a transaction refuses an async function, whose writes would escape it", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, ["j/a/s"]);
    expect(() =>
      store.transaction(async () => {
        store.updateStep("run-1", "j/a/s", { updatedAt: 2, state: "succeeded" });
        await Promise.resolve();
      }),
    ).toThrow(/synchronous/);
    expect(store.getStep("run-1", "j/a/s")?.state).toBe("pending");
  });
});

describe("outputs", () => {
  test("records single and list outputs; a repeated download replaces its row", () => {
    const store = open(tempDbPath());
    seedRun(store, {}, ["j/a/s", "j/b/s"]);
    const base = { runId: "run-1", createdAt: 5 };
    store.recordOutput({
      ...base,
      address: "j/a/s",
      name: "video",
      url: "https://cdn/a.mp4",
      path: "o/s.mp4",
    });
    store.recordOutput({ ...base, address: "j/b/s", name: "images", index: 0, url: "https://cdn/1.png" });
    store.recordOutput({ ...base, address: "j/b/s", name: "images", index: 1, url: "https://cdn/2.png" });
    store.recordOutput({
      ...base,
      address: "j/a/s",
      name: "video",
      url: "https://cdn/a.mp4",
      path: "o/s.mp4",
      bytes: 2048,
      sha256: "ab".repeat(32),
      createdAt: 9,
    });

    expect(store.getOutputs("run-1", "j/a/s")).toEqual([
      {
        runId: "run-1",
        address: "j/a/s",
        name: "video",
        index: undefined,
        url: "https://cdn/a.mp4",
        path: "o/s.mp4",
        bytes: 2048,
        sha256: "ab".repeat(32),
        host: hostname(),
        createdAt: 9,
      },
    ]);
    expect(store.getOutputs("run-1").map((o) => [o.address, o.name, o.index])).toEqual([
      ["j/a/s", "video", undefined],
      ["j/b/s", "images", 0],
      ["j/b/s", "images", 1],
    ]);
  });
});

describe("the stored vocabulary", () => {
  test("step states are exactly the engine's", () => {
    expectTypeOf<StoredStepState>().toEqualTypeOf<StepState>();
    expect([...STORED_STEP_STATES].sort()).toEqual(Object.values(StepState).sort());
  });

  test("run outcomes are exactly the engine's run statuses", () => {
    expectTypeOf<RunOutcome>().toEqualTypeOf<EngineRunStatus>();
  });
});
