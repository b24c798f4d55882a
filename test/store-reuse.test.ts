import { describe, expect, test } from "vitest";
import { EMBEDDED_EMULATOR_ORIGIN } from "../src/api/origin.js";
import { priorStateAt } from "../src/engine/prior-runs.js";
import { emptyPriorState, type PriorState } from "../src/plan/index.js";
import type { SqliteStore } from "../src/store/index.js";
import { modelStep, newRun, open, tempDbPath, TEST_ORIGIN } from "./store-helpers.js";

const AT = { apiOrigin: TEST_ORIGIN };

const CAT = "teaser/cat/animate";

/** A run of `workflowName` whose one step ended in `state` at `finishedAt`. */
function finishedStep(
  store: SqliteStore,
  runId: string,
  finishedAt: number,
  { state = "succeeded", workflowName = "teasers", fingerprint = "fp-cat" } = {},
): void {
  store.createRun(newRun({ id: runId, workflowName, startedAt: finishedAt - 100 }));
  store.insertSteps(runId, [modelStep(CAT, { fingerprint })], finishedAt - 100);
  store.updateStep(runId, CAT, {
    updatedAt: finishedAt,
    state: state as "succeeded",
    requestId: `req-${runId}`,
    output: { video: `https://cdn.example/${runId}.mp4` },
    files: { video: `outputs/${runId}/animate.mp4` },
    finishedAt,
  });
}

describe("finding a succeeded step to reuse", () => {
  test("returns the newest success of the workflow with that fingerprint, with its outputs", () => {
    const store = open(tempDbPath());
    finishedStep(store, "run-old", 1_000);
    finishedStep(store, "run-new", 5_000);
    finishedStep(store, "run-middle", 3_000);

    expect(store.findSucceeded("teasers", "fp-cat", AT)).toEqual({
      runId: "run-new",
      address: CAT,
      finishedAt: 5_000,
      requestId: "req-run-new",
      output: { video: "https://cdn.example/run-new.mp4" },
      files: { video: "outputs/run-new/animate.mp4" },
    });
  });

  test("honours notBefore: a success older than the cache TTL is not reused", () => {
    const store = open(tempDbPath());
    finishedStep(store, "run-1", 1_000);
    finishedStep(store, "run-2", 2_000);

    expect(
      store.findSucceeded("teasers", "fp-cat", { apiOrigin: TEST_ORIGIN, notBefore: 1_500 })?.runId,
    ).toBe("run-2");
    expect(
      store.findSucceeded("teasers", "fp-cat", { apiOrigin: TEST_ORIGIN, notBefore: 2_000 })?.runId,
    ).toBe("run-2");
    expect(
      store.findSucceeded("teasers", "fp-cat", { apiOrigin: TEST_ORIGIN, notBefore: 2_001 }),
    ).toBeUndefined();
  });

  test("ignores other workflows, other fingerprints and steps that did not succeed", () => {
    const store = open(tempDbPath());
    finishedStep(store, "other-workflow", 1_000, { workflowName: "posters" });
    finishedStep(store, "other-fingerprint", 1_000, { fingerprint: "fp-dog" });
    finishedStep(store, "failed", 1_000, { state: "failed" });

    expect(store.findSucceeded("teasers", "fp-cat", AT)).toBeUndefined();
    expect(store.findSucceeded("posters", "fp-cat", AT)?.runId).toBe("other-workflow");
  });

  test("a reused copy is not a source: the retention clock runs from the original success", () => {
    const store = open(tempDbPath());
    finishedStep(store, "run-1", 1_000);
    store.createRun(newRun({ id: "run-2", startedAt: 9_000 }));
    store.insertSteps(
      "run-2",
      [modelStep(CAT, { fingerprint: "fp-cat", state: "reused", reusedFromRun: "run-1", finishedAt: 9_000 })],
      9_000,
    );

    expect(store.findSucceeded("teasers", "fp-cat", AT)?.runId).toBe("run-1");
    expect(
      store.findSucceeded("teasers", "fp-cat", { apiOrigin: TEST_ORIGIN, notBefore: 5_000 }),
    ).toBeUndefined();
  });

  test("a run step's stdout is reusable too", () => {
    const store = open(tempDbPath());
    store.createRun(newRun());
    store.insertSteps(
      "run-1",
      [
        {
          address: "t/cat/probe",
          jobId: "t",
          instanceKey: "cat",
          stepId: "probe",
          kind: "run",
          state: "pending",
        },
      ],
      1,
    );
    store.updateStep("run-1", "t/cat/probe", {
      updatedAt: 10,
      state: "succeeded",
      fingerprint: "fp-probe",
      stdout: "duration=5.0\n",
      finishedAt: 10,
    });
    expect(store.findSucceeded("teasers", "fp-probe", AT)).toEqual({
      runId: "run-1",
      address: "t/cat/probe",
      finishedAt: 10,
      stdout: "duration=5.0\n",
    });
  });

  test("the store is a PriorState for the planner, and --fresh has one that offers nothing", () => {
    const store = open(tempDbPath());
    finishedStep(store, "run-1", 1_000);
    const prior: PriorState = priorStateAt(store, TEST_ORIGIN);
    expect(
      priorStateAt(store, TEST_ORIGIN, { fresh: true }).findSucceeded("teasers", "fp-cat"),
    ).toBeUndefined();
    expect(prior.findSucceeded("teasers", "fp-cat")?.runId).toBe("run-1");
    expect(emptyPriorState.findSucceeded("teasers", "fp-cat")).toBeUndefined();
  });
});

describe("results belong to the API origin that produced them", () => {
  const REAL = "https://model-api.runcomfy.net";
  const STANDALONE = "http://127.0.0.1:8787";

  test("a success is reused only by runs at its own origin; the embedded emulator is one origin whatever its port", () => {
    const store = open(tempDbPath());
    store.createRun(newRun({ id: "embedded", apiOrigin: EMBEDDED_EMULATOR_ORIGIN, startedAt: 900 }));
    store.insertSteps("embedded", [modelStep(CAT, { fingerprint: "fp-cat" })], 900);
    store.updateStep("embedded", CAT, { updatedAt: 1_000, state: "succeeded", finishedAt: 1_000 });
    finishedStep(store, "standalone", 2_000);
    store.createRun(newRun({ id: "unrecorded", apiOrigin: undefined, startedAt: 2_900 }));
    store.insertSteps("unrecorded", [modelStep(CAT, { fingerprint: "fp-cat" })], 2_900);
    store.updateStep("unrecorded", CAT, { updatedAt: 3_000, state: "succeeded", finishedAt: 3_000 });

    expect(store.findSucceeded("teasers", "fp-cat", { apiOrigin: EMBEDDED_EMULATOR_ORIGIN })?.runId).toBe(
      "embedded",
    );
    expect(store.findSucceeded("teasers", "fp-cat", AT)?.runId).toBe("standalone");
    // Nothing made elsewhere, nor anything whose origin was never recorded, counts at RunComfy.
    expect(store.findSucceeded("teasers", "fp-cat", { apiOrigin: REAL })).toBeUndefined();
    expect(store.findSucceeded("teasers", "fp-cat", { apiOrigin: STANDALONE })).toBeUndefined();
  });

  test("typical durations are learned per origin", () => {
    const store = open(tempDbPath());
    for (const [id, apiOrigin, serverMs] of [
      ["at-emulator", EMBEDDED_EMULATOR_ORIGIN, 1_000],
      ["at-runcomfy", REAL, 60_000],
    ] as const) {
      store.createRun(newRun({ id, apiOrigin }));
      store.insertSteps(id, [modelStep(CAT)], 1_000);
      const key = { runId: id, address: CAT, attempt: 1 };
      store.startAttempt({ ...key, workflowName: "teasers", fingerprint: "fp", startedAt: 1_000 });
      store.updateAttempt(key, { state: "succeeded", finishedAt: 2_000, serverMs });
    }
    expect(store.typicalDuration("minimax/Hailuo Video 01 Live", REAL)?.ms).toBe(60_000);
    expect(store.typicalDuration("minimax/Hailuo Video 01 Live", EMBEDDED_EMULATOR_ORIGIN)?.ms).toBe(1_000);
    expect(store.typicalDuration("minimax/Hailuo Video 01 Live", STANDALONE)).toBeUndefined();
  });
});
