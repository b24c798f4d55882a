/** outputProblem (src/models/validate-output.ts) against the shipped models' output schemas. */
import { describe, expect, test } from "vitest";
import { loadModelRegistry } from "../src/models/index.js";
import { outputProblem } from "../src/models/validate-output.js";
import type { ModelEntry } from "../src/models/types.js";

const hailuo = loadModelRegistry().get("minimax/Hailuo Video 01 Live")!;
const gives = "(minimax/Hailuo Video 01 Live gives image, video, images, videos)";

describe("a succeeded request's output", () => {
  test("is usable when it names one of the model's outputs with a value of the right shape", () => {
    expect(outputProblem(hailuo, { video: "https://cdn.example/v.mp4" })).toBeUndefined();
    expect(outputProblem(hailuo, { videos: ["https://cdn.example/1.mp4"] })).toBeUndefined();
  });

  test("is refused when absent, empty, not an object, or naming none of the model's outputs", () => {
    expect(outputProblem(hailuo, undefined)).toBe(`its result has no output ${gives}`);
    expect(outputProblem(hailuo, {})).toBe(`its output is empty ${gives}`);
    expect(outputProblem(hailuo, { video: null })).toBe(`its output is empty ${gives}`);
    expect(outputProblem(hailuo, "done")).toBe(
      `its output is a string ("done"), not an object of named outputs ${gives}`,
    );
    expect(outputProblem(hailuo, ["x"])).toContain("its output is a list");
    expect(outputProblem(hailuo, { text: "hi" })).toBe(
      `its output names none of the model's outputs: got text ${gives}`,
    );
  });

  test("is refused when it does not match the output schema", () => {
    expect(outputProblem(hailuo, { video: 12 })).toBe(
      "its output does not match the model's output schema: output.video must be string",
    );
  });

  test("of a model without an output schema: any non-empty object", () => {
    const bare = {
      model_id: "x/y",
      input_schema: { type: "object", properties: {} },
    } as unknown as ModelEntry;
    expect(outputProblem(bare, { anything: "x" })).toBeUndefined();
    expect(outputProblem(bare, {})).toBe("its output is empty");
  });
});
