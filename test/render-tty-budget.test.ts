/** The live view's spend against the budget (SPEC §9): summed from step events' `cost`, each step counted once. */
import { describe, expect, it } from "vitest";
import { ProgressModel, renderFrame } from "../src/render/tty/index.js";
import { runStarted, stepEvent } from "./render-tty-events.js";

const WIDE = { rows: 40, columns: 200 };

describe("the live view's spend", () => {
  it("shows what the steps cost against the apply's budget; a step's later end replaces its earlier total", () => {
    const model = new ProgressModel();
    model.apply({ ...runStarted(0, 3, 3), maxCostUsd: 2.5 });
    expect(renderFrame(model, WIDE, 1_000)[0]).toContain("$0.00 of $2.50 spent");
    model.apply(stepEvent("clip/a/animate", "in_progress", "succeeded", 1_000, { cost: 0.225 }));
    model.apply(stepEvent("clip/b/animate", "in_progress", "failed", 1_000, { cost: 0.1 }));
    // b's retry: its end says the step's total over both attempts.
    model.apply(stepEvent("clip/b/animate", "failed", "waiting", 1_100));
    model.apply(stepEvent("clip/b/animate", "in_progress", "succeeded", 1_500, { cost: 0.3 }));
    expect(renderFrame(model, WIDE, 2_000)[0]).toContain("$0.53 of $2.50 spent");
  });

  it("without a budget, shows the spend once there is any", () => {
    const model = new ProgressModel();
    model.apply(runStarted(0, 1, 1));
    expect(renderFrame(model, WIDE, 1_000)[0]).not.toContain("spent");
    model.apply(stepEvent("clip/a/animate", "in_progress", "succeeded", 1_000, { cost: 1.5 }));
    expect(renderFrame(model, WIDE, 2_000)[0]).toContain("$1.50 spent");
  });
});
