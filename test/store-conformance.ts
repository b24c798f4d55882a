/**
 * The store conformance suite: what every adapter of the state store port (src/store/port.ts)
 * must do, written against the port alone. SQLite runs it (store-conformance-sqlite.test.ts);
 * any other adapter (PostgreSQL) runs the very same tests through its own `StoreUnderTest`.
 * Nothing here may know how an adapter keeps its data.
 */
import { hostname } from "node:os";
import { afterEach, describe, expect, test } from "vitest";
import type { StateStore } from "../src/store/port.js";
import type { AttemptKey, NewAttempt, NewRun, NewStep, StepPatch } from "../src/store/types.js";

/** How the suite reaches one adapter. */
export interface StoreUnderTest {
  /** A new, empty store, and where it is (what `reopen` and `runInChild` take). */
  openFresh(): Promise<{ store: StateStore; location: string }>;
  /** Opens the store at `location` again, as the next process would. */
  reopen(location: string): Promise<StateStore>;
  /**
   * Runs `body` in a new process: JavaScript, the body of an async function with `store`
   * (this adapter opened on `location`) and `args` in scope. Resolves once that process ended.
   */
  runInChild(
    location: string,
    body: string,
    args: unknown,
  ): Promise<{ code: number | null; signal: string | null; stderr: string }>;
}

const ORIGIN = "https://api.example";
const OTHER_ORIGIN = "https://proxy.example";
const MODEL = "minimax/Hailuo Video 01 Live";

function newRun(id: string, overrides: Partial<NewRun> = {}): NewRun {
  return {
    id,
    workflowName: "teasers",
    workflowFile: "teasers.yaml",
    kind: "apply",
    plan: null,
    options: { concurrency: 4 },
    startedAt: 1_000,
    pid: 4242,
    hostname: "host-a",
    apiOrigin: ORIGIN,
    ...overrides,
  };
}

function newStep(address: string, overrides: Partial<NewStep> = {}): NewStep {
  const [jobId = "", instanceKey = "", stepId = ""] = address.split("/");
  return {
    address,
    jobId,
    instanceKey,
    stepId,
    kind: "model",
    model: MODEL,
    state: "pending",
    fingerprint: `fp-${instanceKey}`,
    input: { prompt: `a ${instanceKey}` },
    ...overrides,
  };
}

function newAttempt(key: AttemptKey, fingerprint: string, startedAt = 2_000): NewAttempt {
  return { ...key, workflowName: "teasers", fingerprint, startedAt };
}

const CAT = "teaser/cat/animate";
const DOG = "teaser/dog/animate";

export function storeConformance(name: string, adapter: StoreUnderTest): void {
  const opened: StateStore[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0).reverse()) await store.close();
  });
  const fresh = async (): Promise<{ store: StateStore; location: string }> => {
    const made = await adapter.openFresh();
    opened.push(made.store);
    return made;
  };
  const reopen = async (location: string): Promise<StateStore> => {
    const store = await adapter.reopen(location);
    opened.push(store);
    return store;
  };
  /** A run with pending steps at these addresses. */
  const seed = async (store: StateStore, run: NewRun, addresses: readonly string[]) => {
    await store.runs.create(run);
    await store.steps.insert(
      run.id,
      addresses.map((address) => newStep(address)),
      run.startedAt,
    );
  };
  /** A step that succeeded in `run` with one output. */
  const succeed = async (store: StateStore, runId: string, address: string, at: number) => {
    await store.steps.update(
      runId,
      address,
      {
        updatedAt: at,
        state: "succeeded",
        finishedAt: at,
        output: { video: `https://cdn.example/${runId}.mp4` },
      },
      {
        outputs: [
          {
            runId,
            address,
            name: "video",
            url: `https://cdn.example/${runId}.mp4`,
            path: `/out/${runId}.mp4`,
            createdAt: at,
          },
        ],
      },
    );
  };

  describe(`${name}: the state store port`, () => {
    test("runs: created, read back, newest first, finished, a cancel requested", async () => {
      const { store } = await fresh();
      await store.runs.create(newRun("run-1", { startedAt: 1_000 }));
      await store.runs.create(newRun("run-2", { startedAt: 2_000, kind: "retry", parentRunId: "run-1" }));
      await store.runs.create(newRun("run-3", { startedAt: 3_000, workflowName: "other" }));

      expect(await store.runs.get("run-2")).toMatchObject({
        id: "run-2",
        workflowName: "teasers",
        kind: "retry",
        parentRunId: "run-1",
        status: "running",
        apiOrigin: ORIGIN,
        options: { concurrency: 4 },
      });
      expect(await store.runs.get("nope")).toBeUndefined();
      expect((await store.runs.latest("teasers"))?.id).toBe("run-2");
      expect((await store.runs.latest())?.id).toBe("run-3");
      expect((await store.runs.list({ limit: 2 })).map((run) => run.id)).toEqual(["run-3", "run-2"]);
      expect((await store.runs.list({ limit: 5, workflowName: "teasers" })).map((run) => run.id)).toEqual([
        "run-2",
        "run-1",
      ]);

      await store.runs.requestCancel("run-1", 1_500);
      await store.runs.finish("run-1", {
        status: "cancelled",
        exitCode: 1,
        finishedAt: 1_600,
        counts: { cancelled: 1 },
      });
      expect(await store.runs.get("run-1")).toMatchObject({
        status: "cancelled",
        exitCode: 1,
        finishedAt: 1_600,
        counts: { cancelled: 1 },
        cancelRequestedAt: 1_500,
      });
    });

    test("a plan recorded in parts reads back in part order, its steps in plan order, counted by state", async () => {
      const { store } = await fresh();
      await store.runs.create(newRun("run-1"));
      // The dog's part first: a resumed run records what is left first.
      await store.runs.addPlanPart("run-1", 1, [newStep(DOG, { position: 1 })], ["dog"], 1_000);
      await store.runs.addPlanPart("run-1", 0, [newStep(CAT, { position: 0 })], ["cat"], 1_000);
      expect(await store.runs.plan("run-1")).toBeNull();
      await store.runs.setPlan("run-1", { format: "whole", steps: [] });

      expect(await store.runs.plan("run-1")).toEqual({ format: "whole", steps: [] });
      expect(await store.runs.planParts("run-1")).toEqual([["cat"], ["dog"]]);
      // From a part on: what a worker reads of the parts recorded since its last read.
      expect(await store.runs.planParts("run-1", 1)).toEqual([["dog"]]);
      expect(await store.runs.planParts("run-1", 2)).toEqual([]);
      expect((await store.steps.list("run-1")).map((step) => step.address)).toEqual([CAT, DOG]);
      await store.steps.update("run-1", DOG, { updatedAt: 1_100, state: "failed", error: "boom" });
      expect(await store.steps.countByState("run-1")).toEqual({ pending: 1, failed: 1 });
      expect((await store.steps.list("run-1", { states: ["failed"] })).map((step) => step.address)).toEqual([
        DOG,
      ]);
      expect(await store.steps.get("run-1", DOG)).toMatchObject({
        state: "failed",
        error: "boom",
        model: MODEL,
      });
      expect(await store.runs.unfinishedInstances("run-1")).toEqual(new Set(["teaser/cat", "teaser/dog"]));
    });

    test("changedSince: every step at first; then every step written since, with what was written, however many readers", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), [CAT, DOG]);
      const first = await store.steps.changedSince("run-1");
      expect(first.steps.map((step) => step.address)).toEqual([CAT, DOG]);
      // A write from another store (another process of the cluster) is seen too.
      const other = await reopen(location);
      await other.steps.update("run-1", DOG, { updatedAt: 1_100, state: "running" });
      const second = await store.steps.changedSince("run-1", first.cursor);
      expect(second.steps.find((step) => step.address === DOG)?.state).toBe("running");
      await store.steps.update("run-1", CAT, { updatedAt: 1_200, state: "failed", error: "boom" });
      const third = await store.steps.changedSince("run-1", second.cursor);
      expect(third.steps.find((step) => step.address === CAT)).toMatchObject({
        state: "failed",
        error: "boom",
      });
      // Nothing written since: whatever comes back is as it was.
      const fourth = await store.steps.changedSince("run-1", third.cursor);
      for (const step of fourth.steps) expect(step.state).toBe(step.address === CAT ? "failed" : "running");
    });

    test("a write is seen by this store's reads at once, before its promise resolves", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      const written = store.steps.update("run-1", CAT, { updatedAt: 1_100, state: "waiting" });
      const read = store.steps.get("run-1", CAT);
      await written;
      expect((await read)?.state).toBe("waiting");
    });

    test("a request id whose write resolved survives the process being killed right after", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      await store.close();
      const ended = await adapter.runInChild(
        location,
        `const key = { runId: "run-1", address: args.address, attempt: 1 };
         await store.attempts.start(
           { ...key, workflowName: "teasers", fingerprint: "fp-cat", startedAt: 2000 },
           { updatedAt: 2000, state: "submitting", attempt: 1 },
         );
         await store.attempts.recordRequestId(key, "req-cat", 2100, { updatedAt: 2100, state: "in_queue", requestId: "req-cat" });
         // A later write, not waited for: the process dies before it can be made durable.
         void store.steps.update("run-1", args.address, { updatedAt: 2200, state: "in_progress" }).catch(() => {});
         process.kill(process.pid, "SIGKILL");`,
        { address: CAT },
      );
      expect(ended).toMatchObject({ signal: "SIGKILL", stderr: "" });

      const after = await reopen(location);
      expect(await after.attempts.list("run-1", CAT)).toEqual([
        expect.objectContaining({ attempt: 1, requestId: "req-cat", state: "submitted", submittedAt: 2_100 }),
      ]);
      expect(await after.steps.get("run-1", CAT)).toMatchObject({ requestId: "req-cat", attempt: 1 });
      expect(["in_queue", "in_progress"]).toContain((await after.steps.get("run-1", CAT))?.state);
      // The next apply re-attaches to it: it is never submitted again.
      const prior = await after.history.priorRuns("teasers");
      expect(prior.inFlightAt("teasers", "fp-cat", CAT)).toEqual([
        expect.objectContaining({
          runId: "run-1",
          requestId: "req-cat",
          disposition: "reattach",
          apiOrigin: ORIGIN,
        }),
      ]);
    });

    test("attempts: a start mirrored on its step, its id, its end with the outputs in one write", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      const key = { runId: "run-1", address: CAT, attempt: 1 };
      await store.attempts.start(newAttempt(key, "fp-cat"), {
        updatedAt: 2_000,
        state: "submitting",
        attempt: 1,
      });
      expect(await store.steps.get("run-1", CAT)).toMatchObject({ state: "submitting", attempt: 1 });
      expect(await store.attempts.list("run-1")).toEqual([
        expect.objectContaining({ ...key, state: "submitting", requestId: undefined, apiOrigin: ORIGIN }),
      ]);

      await store.attempts.recordRequestId(key, "req-1", 2_100);
      await store.attempts.update(key, { state: "in_progress", queuePosition: null });
      const ended: StepPatch = {
        updatedAt: 3_000,
        state: "succeeded",
        finishedAt: 3_000,
        output: { video: "https://cdn.example/a.mp4" },
      };
      await store.steps.update("run-1", CAT, ended, {
        attempt: { key, patch: { state: "succeeded", finishedAt: 3_000, serverMs: 900 } },
        outputs: [
          { runId: "run-1", address: CAT, name: "video", url: "https://cdn.example/a.mp4", createdAt: 3_000 },
        ],
      });
      expect(await store.attempts.list("run-1", CAT)).toEqual([
        expect.objectContaining({
          requestId: "req-1",
          state: "succeeded",
          submittedAt: 2_100,
          finishedAt: 3_000,
        }),
      ]);
      expect(await store.steps.get("run-1", CAT)).toMatchObject({
        state: "succeeded",
        output: { video: "https://cdn.example/a.mp4" },
      });

      // Outputs are upserted by (run, address, name, index): a download redone replaces its row.
      await store.outputs.record([
        {
          runId: "run-1",
          address: CAT,
          name: "video",
          url: "https://cdn.example/a.mp4",
          path: "/out/a.mp4",
          bytes: 10,
          createdAt: 3_100,
        },
        {
          runId: "run-1",
          address: CAT,
          name: "images",
          index: 0,
          url: "https://cdn.example/0.png",
          createdAt: 3_100,
        },
      ]);
      expect(await store.outputs.list("run-1", CAT)).toEqual([
        expect.objectContaining({ name: "video", index: undefined, path: "/out/a.mp4", bytes: 10 }),
        expect.objectContaining({ name: "images", index: 0, path: undefined }),
      ]);

      await store.outputs.recordInputCapture({
        runId: "run-1",
        url: "https://media.example/cat.png",
        address: CAT,
        error: "gone",
        createdAt: 2_000,
      });
      await store.outputs.recordInputCapture({
        runId: "run-1",
        url: "https://media.example/cat.png",
        address: CAT,
        path: "/in/cat.png",
        createdAt: 2_050,
      });
      expect(await store.outputs.inputCaptures(["run-1"])).toEqual([
        expect.objectContaining({
          url: "https://media.example/cat.png",
          path: "/in/cat.png",
          error: undefined,
        }),
      ]);
    });

    test("reuse: the newest success of a fingerprint at one API origin, within the cache TTL, with its outputs", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1", { startedAt: 1_000 }), [CAT]);
      await seed(store, newRun("elsewhere", { startedAt: 1_500, apiOrigin: OTHER_ORIGIN }), [CAT]);
      await succeed(store, "elsewhere", CAT, 4_000);
      // A lookup made before the success is written still sees it.
      const prior = await store.history.priorRuns("teasers");
      expect(prior.findSucceeded("teasers", "fp-cat", { apiOrigin: ORIGIN })).toBeUndefined();
      await succeed(store, "run-1", CAT, 5_000);

      expect(prior.findSucceeded("teasers", "fp-cat", { apiOrigin: ORIGIN })).toMatchObject({
        runId: "run-1",
        address: CAT,
        finishedAt: 5_000,
        output: { video: "https://cdn.example/run-1.mp4" },
      });
      expect(prior.findSucceeded("teasers", "fp-cat", { apiOrigin: OTHER_ORIGIN })?.runId).toBe("elsewhere");
      expect(
        prior.findSucceeded("teasers", "fp-cat", { apiOrigin: ORIGIN, notBefore: 5_001 }),
      ).toBeUndefined();
      expect(prior.findSucceeded("teasers", "fp-dog", { apiOrigin: ORIGIN })).toBeUndefined();
      expect((await store.outputs.list("run-1")).map((output) => output.path)).toEqual(["/out/run-1.mp4"]);
    });

    test("in flight: with an id it is re-attached to, without one it may be billed, a later attempt at its origin takes over", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1"), [CAT, DOG]);
      const cat = { runId: "run-1", address: CAT, attempt: 1 };
      const dog = { runId: "run-1", address: DOG, attempt: 1 };
      await store.attempts.start(newAttempt(cat, "fp-cat"), {
        updatedAt: 2_000,
        state: "submitting",
        attempt: 1,
      });
      await store.attempts.recordRequestId(cat, "req-cat", 2_100);
      await store.attempts.start(newAttempt(dog, "fp-dog"), {
        updatedAt: 2_000,
        state: "submitting",
        attempt: 1,
      });

      const prior = await store.history.priorRuns("teasers");
      expect(prior.inFlightAt("teasers", "fp-cat", CAT)).toEqual([
        expect.objectContaining({
          runId: "run-1",
          disposition: "reattach",
          requestId: "req-cat",
          submittedAt: 2_100,
        }),
      ]);
      expect(prior.inFlightAt("teasers", "fp-dog", DOG)).toEqual([
        expect.objectContaining({ runId: "run-1", disposition: "maybe_billed", requestId: undefined }),
      ]);
      expect(prior.listInFlight("teasers").map((attempt) => attempt.address)).toEqual([CAT, DOG]);

      // A later run at another origin leaves both standing; at the same origin it takes the cat over.
      await seed(store, newRun("run-2", { startedAt: 3_000, apiOrigin: OTHER_ORIGIN }), [CAT]);
      const there = { runId: "run-2", address: CAT, attempt: 1 };
      await store.attempts.start(newAttempt(there, "fp-cat", 3_000), {
        updatedAt: 3_000,
        state: "submitting",
        attempt: 1,
      });
      await store.attempts.recordRequestId(there, "req-there", 3_100);
      expect(prior.inFlightAt("teasers", "fp-cat", CAT).map((attempt) => attempt.requestId)).toEqual([
        "req-there",
        "req-cat",
      ]);
      await seed(store, newRun("run-3", { startedAt: 4_000 }), [CAT]);
      const again = { runId: "run-3", address: CAT, attempt: 1 };
      await store.attempts.start(newAttempt(again, "fp-cat", 4_000), {
        updatedAt: 4_000,
        state: "submitting",
        attempt: 1,
      });
      await store.attempts.update(again, { state: "failed", error: "refused", finishedAt: 4_100 });
      expect(prior.inFlightAt("teasers", "fp-cat", CAT).map((attempt) => attempt.requestId)).toEqual([
        "req-there",
      ]);
      // Ended attempts are not in flight.
      await store.attempts.update(dog, { state: "failed", error: "refused", finishedAt: 2_200 });
      expect(prior.inFlightAt("teasers", "fp-dog", DOG)).toEqual([]);
    });

    test("locks: one holder; a live one refuses, a stale one is taken over and its heartbeat then fails", async () => {
      const { store } = await fresh();
      const alive = () => true;
      const a = { runId: "run-a", pid: 1, hostname: "host-elsewhere-a" };
      const b = { runId: "run-b", pid: 2, hostname: "host-elsewhere-b" };
      expect(
        await store.locks.acquire("teasers", a, { now: 1_000, staleAfterMs: 10_000, isProcessAlive: alive }),
      ).toEqual({
        acquired: true,
      });
      expect(await store.locks.get("teasers")).toMatchObject({
        runId: "run-a",
        acquiredAt: 1_000,
        heartbeatAt: 1_000,
      });
      expect(
        await store.locks.acquire("teasers", b, { now: 2_000, staleAfterMs: 10_000, isProcessAlive: alive }),
      ).toMatchObject({
        acquired: false,
        holder: { runId: "run-a" },
      });
      expect(await store.locks.heartbeat("teasers", "run-a", 5_000)).toBe(true);
      // Another workflow's lock is another lock.
      expect(
        (await store.locks.acquire("other", b, { now: 5_000, staleAfterMs: 10_000, isProcessAlive: alive }))
          .acquired,
      ).toBe(true);

      const takeover = await store.locks.acquire("teasers", b, {
        now: 16_000,
        staleAfterMs: 10_000,
        isProcessAlive: alive,
      });
      expect(takeover).toMatchObject({
        acquired: true,
        tookOverFrom: { runId: "run-a", heartbeatAt: 5_000 },
      });
      expect(await store.locks.heartbeat("teasers", "run-a", 16_100)).toBe(false);
      expect((await store.locks.get("teasers"))?.runId).toBe("run-b");
      await store.locks.release("teasers", "run-a");
      expect((await store.locks.get("teasers"))?.runId).toBe("run-b");
      await store.locks.release("teasers", "run-b");
      expect(await store.locks.get("teasers")).toBeUndefined();
    });

    test("history: typical durations and learned costs per model and API origin; what a run and its steps cost; prices", async () => {
      const { store } = await fresh();
      const addresses = ["teaser/a/animate", "teaser/b/animate", "teaser/c/animate"];
      await seed(store, newRun("run-1"), addresses);
      const ends = [
        { serverMs: 100, costMicros: 1_000 },
        { serverMs: 300, costMicros: 3_000 },
        { serverMs: 200, costMicros: undefined },
      ];
      for (const [index, address] of addresses.entries()) {
        const key = { runId: "run-1", address, attempt: 1 };
        await store.attempts.start(newAttempt(key, `fp-${index}`), {
          updatedAt: 2_000,
          state: "submitting",
          attempt: 1,
        });
        await store.attempts.recordRequestId(key, `req-${index}`, 2_100);
        await store.attempts.update(key, { state: "succeeded", finishedAt: 3_000, ...ends[index] });
      }
      // 100, 300 and 200 ms: the median, and each 67 ms from it on average.
      expect(await store.history.typicalDuration(MODEL, ORIGIN)).toEqual({ ms: 200, spreadMs: 67 });
      expect(await store.history.typicalDuration(MODEL, OTHER_ORIGIN)).toBeUndefined();
      expect(await store.history.learnedCost(MODEL, ORIGIN)).toEqual({ micros: 2_000, requests: 2 });
      expect(await store.history.learnedCost("another/model", ORIGIN)).toBeUndefined();
      // The third reported no cost: billed, at an unknown price.
      expect(await store.history.runCost("run-1")).toEqual({ micros: 4_000, known: 2, unknown: 1 });
      expect(await store.history.stepCosts("run-1")).toEqual(
        new Map([
          ["teaser/a/animate", { micros: 1_000, known: 1, unknown: 0 }],
          ["teaser/b/animate", { micros: 3_000, known: 1, unknown: 0 }],
          ["teaser/c/animate", { micros: 0, known: 0, unknown: 1 }],
        ]),
      );

      const price = {
        apiOrigin: ORIGIN,
        modelId: MODEL,
        micros: 500,
        unit: "second" as const,
        note: undefined,
        readAt: 9_000,
      };
      await store.history.recordPrice(price);
      await store.history.recordPrice({ ...price, micros: 600, readAt: 9_500 });
      expect(await store.history.pricesAt(ORIGIN)).toEqual(
        new Map([[MODEL, { ...price, micros: 600, readAt: 9_500 }]]),
      );
      expect(await store.history.pricesAt(OTHER_ORIGIN)).toEqual(new Map());
    });

    test("a later run that finished what an interrupted one left says so; a run that was complete stays as it was", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1", { startedAt: 1_000 }), [CAT, DOG]);
      await succeed(store, "run-1", CAT, 1_500);
      await store.runs.finish("run-1", {
        status: "interrupted",
        exitCode: 130,
        finishedAt: 1_600,
        counts: {},
      });
      expect(await store.runs.unfinishedInstances("run-1")).toEqual(new Set(["teaser/dog"]));

      await seed(store, newRun("run-2", { startedAt: 2_000 }), [CAT, DOG]);
      await succeed(store, "run-2", DOG, 2_500);
      expect(await store.runs.closeFinishedBy("run-2")).toEqual(["run-1"]);
      expect((await store.runs.get("run-1"))?.finishedByRun).toBe("run-2");
      expect(await store.runs.closeFinishedBy("run-2")).toEqual([]);
    });
  });

  describe(`${name}: the fence of a submission across processes (SPEC §10)`, () => {
    const KEY = { runId: "run-1", address: CAT, attempt: 1 };
    const submitting = (at: number): StepPatch => ({ updatedAt: at, state: "submitting", attempt: 1 });

    test("of two stores claiming one attempt at once, exactly one wins; the loser writes nothing", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      const other = await reopen(location);

      const claims = await Promise.all([
        store.attempts.claim(newAttempt(KEY, "fp-cat"), submitting(2_000), "worker-a"),
        other.attempts.claim(newAttempt(KEY, "fp-cat"), submitting(2_001), "worker-b"),
      ]);

      expect(claims.filter(Boolean)).toHaveLength(1);
      const winner = claims[0] ? "worker-a" : "worker-b";
      const attempts = await store.attempts.list("run-1", CAT);
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ claimedBy: winner, state: "submitting", requestId: undefined });
      expect(await store.steps.get("run-1", CAT)).toMatchObject({ state: "submitting", attempt: 1 });
      // A redelivery of the same step claims the same attempt again: lost.
      expect(await store.attempts.claim(newAttempt(KEY, "fp-cat"), submitting(2_100), "worker-c")).toBe(
        false,
      );
    });

    test("only the claimant records the request id, once; the verdict then loses", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      expect(await store.attempts.claim(newAttempt(KEY, "fp-cat"), submitting(2_000), "worker-a")).toBe(true);

      expect(await store.attempts.recordClaimedRequestId(KEY, "worker-b", "req-b", 2_100)).toBe(false);
      expect(
        await store.attempts.recordClaimedRequestId(KEY, "worker-a", "req-a", 2_200, {
          updatedAt: 2_200,
          state: "in_queue",
        }),
      ).toBe(true);
      expect(await store.attempts.recordClaimedRequestId(KEY, "worker-a", "req-again", 2_300)).toBe(false);
      expect(
        await store.attempts.abandon(KEY, "its worker died", 2_400, { updatedAt: 2_400, state: "unknown" }),
      ).toBe(false);

      expect((await store.attempts.list("run-1", CAT))[0]).toMatchObject({
        requestId: "req-a",
        state: "submitted",
        submittedAt: 2_200,
        claimedBy: "worker-a",
      });
      expect(await store.steps.get("run-1", CAT)).toMatchObject({ state: "in_queue", requestId: "req-a" });
    });

    test("a claim left without an id by a dead claimant becomes unknown; the claimant's late id then loses", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      expect(await store.attempts.claim(newAttempt(KEY, "fp-cat"), submitting(2_000), "worker-a")).toBe(true);
      const judge = await reopen(location);

      expect(
        await judge.attempts.abandon(KEY, "its worker died before recording a request id", 3_000, {
          updatedAt: 3_000,
          state: "unknown",
          error: "its worker died before recording a request id",
          finishedAt: 3_000,
        }),
      ).toBe(true);
      expect(await store.attempts.recordClaimedRequestId(KEY, "worker-a", "req-late", 3_100)).toBe(false);
      expect(await judge.attempts.abandon(KEY, "twice", 3_200, { updatedAt: 3_200, state: "unknown" })).toBe(
        false,
      );

      const [attempt] = await judge.attempts.list("run-1", CAT);
      expect(attempt).toMatchObject({
        state: "unknown",
        requestId: undefined,
        error: "its worker died before recording a request id",
        finishedAt: 3_000,
      });
      expect(await judge.steps.get("run-1", CAT)).toMatchObject({ state: "unknown", requestId: undefined });
      // Maybe billed: a later run of the workflow sees it as such, never as re-attachable.
      const lookup = await judge.history.priorRuns("teasers");
      expect(lookup.inFlightAt("teasers", "fp-cat", CAT)).toMatchObject([{ disposition: "maybe_billed" }]);
    });

    test("an output file records the host whose process wrote it; a URL alone records none", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1"), [CAT, DOG]);
      await succeed(store, "run-1", CAT, 1_500);
      await store.outputs.record([
        { runId: "run-1", address: DOG, name: "video", url: "https://cdn.example/dog.mp4", createdAt: 1_600 },
      ]);
      const outputs = await store.outputs.list("run-1");
      expect(outputs.map(({ address, host }) => ({ address, host }))).toEqual([
        { address: CAT, host: hostname() },
        { address: DOG, host: undefined },
      ]);
    });

    test("workers: a heartbeat is listed while fresh, refreshed in place, gone once the worker leaves", async () => {
      const { store, location } = await fresh();
      const beat = { name: "w1", host: "host-a", pid: 11, startedAt: 1_000, seenAt: 1_000, doing: [] };
      await store.workers.beat(beat);
      await store.workers.beat({ ...beat, name: "w2", host: "host-b", pid: 12, seenAt: 1_500 });
      await store.workers.beat({ ...beat, seenAt: 2_000, doing: ["run-1 teaser/cat/animate"] });

      const other = await reopen(location);
      expect(await other.workers.list(0)).toEqual([
        { ...beat, seenAt: 2_000, doing: ["run-1 teaser/cat/animate"] },
        { ...beat, name: "w2", host: "host-b", pid: 12, seenAt: 1_500 },
      ]);
      expect((await other.workers.list(1_800)).map((worker) => worker.name)).toEqual(["w1"]);
      await store.workers.leave("w1");
      expect((await other.workers.list(0)).map((worker) => worker.name)).toEqual(["w2"]);
    });
  });

  describe(`${name}: a run's budget held in the state (SPEC §9 across processes)`, () => {
    const USD = 1_000_000;
    const key = (address: string, attempt = 1) => ({ runId: "run-1", address, attempt });
    const ADDRESSES = Array.from({ length: 16 }, (_, i) => `teaser/item-${i}/animate`);

    test("a run has no budget until one is given; given, it reads back its cap with nothing spent", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      expect(await store.budgets.get("run-1")).toBeUndefined();
      await store.budgets.open("run-1", { maxMicros: USD, estimates: { [MODEL]: 250_000 } });
      expect(await (await reopen(location)).budgets.get("run-1")).toEqual({
        maxMicros: USD,
        spentMicros: 0,
        reservedMicros: 0,
        reached: false,
        held: 0,
      });
      // A run without a budget: nothing to settle or release, and nothing to reserve from.
      await store.runs.create(newRun("run-2"));
      await store.budgets.settle({ runId: "run-2", address: CAT, attempt: 1 }, MODEL, 5);
      await store.budgets.release({ runId: "run-2", address: CAT, attempt: 1 });
      expect(await store.budgets.get("run-2")).toBeUndefined();
      await expect(
        store.budgets.reserve({ runId: "run-2", address: CAT, attempt: 1 }, MODEL),
      ).rejects.toThrow();
    });

    test("granted while spent + in flight + the estimate stay within the cap (the last that fits exactly); then reached: every later one is refused, even one that would fit", async () => {
      const { store } = await fresh();
      await seed(store, newRun("run-1"), ADDRESSES);
      await store.budgets.open("run-1", { maxMicros: USD, estimates: { [MODEL]: 250_000, cheap: 1 } });
      for (const address of ADDRESSES.slice(0, 4))
        expect((await store.budgets.reserve(key(address), MODEL)).granted, address).toBe(true);
      const refused = await store.budgets.reserve(key(ADDRESSES[4]!), MODEL);
      expect(refused).toEqual({
        granted: false,
        maxMicros: USD,
        spentMicros: 0,
        reservedMicros: USD,
        reached: true,
        held: 1,
      });
      // One goes back: room again, but the budget was reached.
      await store.budgets.release(key(ADDRESSES[0]!));
      expect((await store.budgets.reserve(key(ADDRESSES[5]!), "cheap")).granted).toBe(false);
      expect(await store.budgets.get("run-1")).toMatchObject({
        reservedMicros: 750_000,
        reached: true,
        held: 2,
      });
    });

    test("a request's end: its reservation becomes what it cost, or its estimate when unreported; nothing created gives it back; each only once", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), ADDRESSES);
      await store.budgets.open("run-1", { maxMicros: 10 * USD, estimates: { [MODEL]: 200_000 } });
      for (const address of ADDRESSES.slice(0, 3)) await store.budgets.reserve(key(address), MODEL);
      const other = await reopen(location);
      await other.budgets.settle(key(ADDRESSES[0]!), MODEL, 150_000);
      await other.budgets.settle(key(ADDRESSES[1]!), MODEL, undefined);
      await other.budgets.release(key(ADDRESSES[2]!));
      expect(await store.budgets.get("run-1")).toMatchObject({ spentMicros: 350_000, reservedMicros: 0 });
      // A redelivered step reporting the same request again, or giving it back again: no change.
      await store.budgets.settle(key(ADDRESSES[0]!), MODEL, 150_000);
      await store.budgets.settle(key(ADDRESSES[2]!), MODEL, 150_000);
      await store.budgets.release(key(ADDRESSES[1]!));
      expect(await store.budgets.get("run-1")).toMatchObject({ spentMicros: 350_000, reservedMicros: 0 });
      // A re-attached request reserved nothing: what it reported is spent all the same, once.
      await store.budgets.settle(key(ADDRESSES[3]!), MODEL, 90_000);
      await other.budgets.settle(key(ADDRESSES[3]!), MODEL, 90_000);
      expect(await store.budgets.get("run-1")).toMatchObject({ spentMicros: 440_000, reservedMicros: 0 });
    });

    test("a later attempt that re-attached to an earlier attempt's request (its process died) ends that attempt's reservation, once", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), [CAT, DOG]);
      await store.budgets.open("run-1", { maxMicros: USD, estimates: { [MODEL]: 200_000 } });
      // Attempt 1 of each reserved, then its process died; attempt 2 re-attached to its request.
      await store.budgets.reserve(key(CAT), MODEL);
      await store.budgets.reserve(key(DOG), MODEL);
      const other = await reopen(location);
      await other.budgets.settle(key(CAT, 2), MODEL, 150_000);
      await other.budgets.release(key(DOG, 2));
      expect(await store.budgets.get("run-1")).toMatchObject({ spentMicros: 150_000, reservedMicros: 0 });
      // Told again (a redelivery), or by the first attempt's own late end: no change.
      await store.budgets.settle(key(CAT, 2), MODEL, 150_000);
      await store.budgets.settle(key(CAT, 1), MODEL, 150_000);
      await store.budgets.release(key(DOG, 2));
      expect(await store.budgets.get("run-1")).toMatchObject({ spentMicros: 150_000, reservedMicros: 0 });
    });

    test("a second delivery of an attempt that holds a reservation is granted without counting it twice", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), [CAT]);
      await store.budgets.open("run-1", { maxMicros: 300_000, estimates: { [MODEL]: 200_000 } });
      expect((await store.budgets.reserve(key(CAT), MODEL)).granted).toBe(true);
      const again = await (await reopen(location)).budgets.reserve(key(CAT), MODEL);
      expect(again).toMatchObject({ granted: true, reservedMicros: 200_000, reached: false });
    });

    test("an actual cost above its estimate raises the model's estimate for every later decision, in every store", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), ADDRESSES);
      await store.budgets.open("run-1", { maxMicros: USD, estimates: { [MODEL]: 100_000 } });
      await store.budgets.reserve(key(ADDRESSES[0]!), MODEL);
      await store.budgets.settle(key(ADDRESSES[0]!), MODEL, 400_000);
      const other = await reopen(location);
      // At $0.10 a second would fit ($0.40 + $0.10); at the mean of what it cost ($0.40) a third would not.
      expect((await other.budgets.reserve(key(ADDRESSES[1]!), MODEL)).reservedMicros).toBe(400_000);
      expect(await other.budgets.reserve(key(ADDRESSES[2]!), MODEL)).toMatchObject({
        granted: false,
        spentMicros: 400_000,
        reservedMicros: 400_000,
      });
      // A model without an estimate learns one from its reported costs, rounded up.
      await store.runs.create(newRun("run-2"));
      await store.budgets.open("run-2", { maxMicros: USD, estimates: {} });
      const run2 = (address: string) => ({ runId: "run-2", address, attempt: 1 });
      await store.budgets.settle(run2("a"), "aleph", 50_000);
      await store.budgets.settle(run2("b"), "aleph", 50_001);
      expect((await store.budgets.reserve(run2("c"), "aleph")).reservedMicros).toBe(50_001);
    });

    test("stores reserving from one budget at once never reserve past it: exactly what fits is granted", async () => {
      const { store, location } = await fresh();
      await seed(store, newRun("run-1"), ADDRESSES);
      // $1.00 at $0.15 a request: 6 fit ($0.90), not 7.
      await store.budgets.open("run-1", { maxMicros: USD, estimates: { [MODEL]: 150_000 } });
      const others = [await reopen(location), await reopen(location)];
      const decisions = await Promise.all(
        ADDRESSES.map((address, i) => [store, ...others][i % 3]!.budgets.reserve(key(address), MODEL)),
      );
      expect(decisions.filter((decision) => decision.granted)).toHaveLength(6);
      expect(await store.budgets.get("run-1")).toMatchObject({
        reservedMicros: 900_000,
        reached: true,
        held: 10,
      });
    });
  });
}
