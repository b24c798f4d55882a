import { describe, expect, test } from "vitest";
import { emptyPriorState } from "../src/plan/index.js";
import type { PriorState, SqliteStore } from "../src/store/index.js";
import { modelStep, newRun, open, tempDbPath } from "./store-helpers.js";

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

    expect(store.findSucceeded("teasers", "fp-cat")).toEqual({
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

    expect(store.findSucceeded("teasers", "fp-cat", 1_500)?.runId).toBe("run-2");
    expect(store.findSucceeded("teasers", "fp-cat", 2_000)?.runId).toBe("run-2");
    expect(store.findSucceeded("teasers", "fp-cat", 2_001)).toBeUndefined();
  });

  test("ignores other workflows, other fingerprints and steps that did not succeed", () => {
    const store = open(tempDbPath());
    finishedStep(store, "other-workflow", 1_000, { workflowName: "posters" });
    finishedStep(store, "other-fingerprint", 1_000, { fingerprint: "fp-dog" });
    finishedStep(store, "failed", 1_000, { state: "failed" });

    expect(store.findSucceeded("teasers", "fp-cat")).toBeUndefined();
    expect(store.findSucceeded("posters", "fp-cat")?.runId).toBe("other-workflow");
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

    expect(store.findSucceeded("teasers", "fp-cat")?.runId).toBe("run-1");
    expect(store.findSucceeded("teasers", "fp-cat", 5_000)).toBeUndefined();
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
    expect(store.findSucceeded("teasers", "fp-probe")).toEqual({
      runId: "run-1",
      address: "t/cat/probe",
      finishedAt: 10,
      stdout: "duration=5.0\n",
    });
  });

  test("the store is a PriorState for the planner, and --fresh has one that offers nothing", () => {
    const store = open(tempDbPath());
    finishedStep(store, "run-1", 1_000);
    const prior: PriorState = store;
    expect(prior.findSucceeded("teasers", "fp-cat")?.runId).toBe("run-1");
    expect(emptyPriorState.findSucceeded("teasers", "fp-cat")).toBeUndefined();
  });
});
