/**
 * StepResults (src/engine/step-results.ts): the results later steps' templates read
 * (`steps.ID.output`, `.files`, `.request_id`, `.stdout`). Only results another step depends
 * on are kept; a step sees its own instance's dependencies under their step ids.
 */
import { describe, expect, test } from "vitest";
import type { Plan, PlannedStep } from "../src/plan/types.js";
import { resultView, StepResults } from "../src/engine/step-results.js";

const PLAN = {
  runId: "r-20250301-0900",
  createdAt: Date.UTC(2025, 2, 1, 9, 0),
  workflow: { name: "teasers" },
} as unknown as Pick<Plan, "runId" | "createdAt" | "workflow">;

/** The fields StepResults reads of a planned step. */
function step(address: string, ...dependsOn: string[]): PlannedStep {
  const [jobId, instanceKey, stepId] = address.split("/") as [string, string, string];
  return { address, jobId, instanceKey, stepId, dependsOn } as unknown as PlannedStep;
}

describe("StepResults", () => {
  test("a step sees its dependencies' results under their step ids, with the run, job and workflow", () => {
    const restyle = step("teaser/cat/restyle", "teaser/cat/animate");
    const results = new StepResults(PLAN, [step("teaser/cat/animate"), restyle]);
    results.record(
      "teaser/cat/animate",
      resultView({ output: { video: "https://x/v.mp4" }, requestId: "req-1" }),
    );
    expect(results.contextFor(restyle)).toEqual({
      item: {},
      vars: {},
      workflow: { name: "teasers" },
      job: { id: "teaser", key: "cat" },
      run: { id: "r-20250301-0900", date: "2025-03-01" },
      env: {},
      steps: { animate: { output: { video: "https://x/v.mp4" }, request_id: "req-1" } },
    });
  });

  test("keeps only the results a step depends on", () => {
    const poster = step("teaser/cat/poster", "teaser/cat/restyle");
    const results = new StepResults(PLAN, [poster]);
    results.record("teaser/cat/restyle", resultView({ files: { video: "/out/restyle.mp4" } }));
    results.record("teaser/dog/restyle", resultView({ files: { video: "/out/dog.mp4" } }));
    // Nobody depends on dog's restyle: a step of the same id elsewhere never shows up.
    expect(results.contextFor(step("teaser/dog/poster", "teaser/dog/restyle")).steps).toEqual({});
    expect(results.contextFor(poster).steps).toEqual({ restyle: { files: { video: "/out/restyle.mp4" } } });
  });

  test("steps added later (the next slice) say what they need before it is recorded", () => {
    const results = new StepResults(PLAN);
    const listing = step("clip/boat/listing", "clip/boat/animate");
    results.record("clip/boat/animate", resultView({ stdout: "too early" }));
    results.add([listing]);
    expect(results.contextFor(listing).steps).toEqual({});
    results.record("clip/boat/animate", resultView({ stdout: "duration=5.0\n" }));
    expect(results.contextFor(listing).steps).toEqual({ animate: { stdout: "duration=5.0\n" } });
  });

  test("a dependency without a result yet is absent, not an empty result", () => {
    const both = step("clip/boat/edit", "clip/boat/still", "clip/boat/clip");
    const results = new StepResults(PLAN, [both]);
    results.record("clip/boat/still", resultView({ output: { image: "https://x/i.png" } }));
    expect(Object.keys(results.contextFor(both).steps)).toEqual(["still"]);
  });
});

describe("resultView", () => {
  test("leaves out what is absent, and names the request id as templates do", () => {
    expect(resultView({})).toEqual({});
    expect(
      resultView({ output: { video: "v" }, files: { video: "/f" }, requestId: "r", stdout: "s" }),
    ).toEqual({ output: { video: "v" }, files: { video: "/f" }, request_id: "r", stdout: "s" });
    expect(Object.keys(resultView({ output: undefined, stdout: "" }))).toEqual(["stdout"]);
  });
});
