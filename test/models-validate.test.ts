import os from "node:os";
import { describe, expect, test } from "vitest";
import {
  loadModelRegistry,
  ModelSchemaError,
  requireModel,
  validateModelInput,
  type ModelEntry,
} from "../src/models/index.js";

const registry = loadModelRegistry({ cwd: os.tmpdir() });
const aleph = requireModel(registry, "runwayml/runway-aleph/video-to-video");
const hailuo = requireModel(registry, "minimax/Hailuo Video 01 Live");

const VIDEO = "https://cdn.example.com/clip.mp4";
const IMAGE = "https://cdn.example.com/still.png";

describe("validateModelInput on runwayml/runway-aleph/video-to-video", () => {
  test("accepts a complete input and reports nothing", () => {
    const result = validateModelInput(aleph, { prompt: "teal", video_url: VIDEO, ratio: "848:480" });
    expect(result.issues).toEqual([]);
    expect(result.value).toEqual({ prompt: "teal", video_url: VIDEO, ratio: "848:480" });
  });

  test("fills the default ratio into the value without changing the caller's object", () => {
    const input = { prompt: "teal", video_url: VIDEO };
    const result = validateModelInput(aleph, input);
    expect(result.issues).toEqual([]);
    expect(result.value).toEqual({ prompt: "teal", video_url: VIDEO, ratio: "1280:720" });
    expect(input).toEqual({ prompt: "teal", video_url: VIDEO });
  });

  test("reports every missing required field by name", () => {
    const { issues } = validateModelInput(aleph, {});
    expect(issues).toEqual([
      { field: "prompt", kind: "required", message: "input.prompt is required" },
      { field: "video_url", kind: "required", message: "input.video_url is required" },
    ]);
  });

  test("lists the allowed ratios when the ratio is not one of them", () => {
    const { issues } = validateModelInput(aleph, { prompt: "p", video_url: VIDEO, ratio: "1920:1080" });
    expect(issues).toEqual([
      {
        field: "ratio",
        kind: "enum",
        message:
          'input.ratio must be one of "1584:672", "1280:720", "848:480", "1104:832", "640:480", ' +
          '"960:960", "832:1104", "720:1280" (got "1920:1080")',
      },
    ]);
  });

  test("says how long a prompt over 1000 characters is", () => {
    const { issues } = validateModelInput(aleph, { prompt: "x".repeat(1203), video_url: VIDEO });
    expect(issues).toEqual([
      { field: "prompt", kind: "maxLength", message: "input.prompt is longer than 1000 characters (1203)" },
    ]);
  });

  test("accepts a prompt of exactly 1000 characters, counting an emoji as one", () => {
    const prompt = `${"x".repeat(999)}🎬`;
    expect(validateModelInput(aleph, { prompt, video_url: VIDEO }).issues).toEqual([]);
  });

  test("reports a value of the wrong type", () => {
    const { issues } = validateModelInput(aleph, { prompt: 42, video_url: VIDEO });
    expect(issues).toEqual([
      { field: "prompt", kind: "type", message: "input.prompt must be a string (got 42)" },
    ]);
  });

  test("rejects a plain-http media URL off loopback, and accepts one on loopback", () => {
    const remote = validateModelInput(aleph, { prompt: "p", video_url: "http://cdn.example.com/a.mp4" });
    expect(remote.issues).toEqual([
      {
        field: "video_url",
        kind: "media_url",
        message:
          "input.video_url: http://cdn.example.com/a.mp4 uses plain http; media inputs must be https " +
          "(http is allowed only on loopback)",
      },
    ]);
    const local = validateModelInput(aleph, { prompt: "p", video_url: "http://127.0.0.1:8787/media/a.mp4" });
    expect(local.issues).toEqual([]);
  });

  test("rejects a media value that is not a URL at all", () => {
    const { issues } = validateModelInput(aleph, { prompt: "p", video_url: VIDEO, image_url: "still.png" });
    expect(issues).toEqual([
      {
        field: "image_url",
        kind: "media_url",
        message: 'input.image_url: "still.png" is not a URL; media inputs must be public https URLs',
      },
    ]);
  });
});

describe("validateModelInput on minimax/Hailuo Video 01 Live", () => {
  test("fills prompt_optimizer with its default true", () => {
    const result = validateModelInput(hailuo, { prompt: "a cat", image_url: IMAGE });
    expect(result).toEqual({
      value: { prompt: "a cat", image_url: IMAGE, prompt_optimizer: true },
      issues: [],
    });
  });

  test("keeps an explicit prompt_optimizer false", () => {
    const result = validateModelInput(hailuo, { prompt: "a cat", image_url: IMAGE, prompt_optimizer: false });
    expect(result.value.prompt_optimizer).toBe(false);
  });

  test("reports a non-boolean prompt_optimizer", () => {
    const { issues } = validateModelInput(hailuo, { prompt: "a", image_url: IMAGE, prompt_optimizer: "yes" });
    expect(issues).toEqual([
      {
        field: "prompt_optimizer",
        kind: "type",
        message: 'input.prompt_optimizer must be a boolean (got "yes")',
      },
    ]);
  });

  test("allows a prompt up to 1995 characters and no longer", () => {
    expect(validateModelInput(hailuo, { prompt: "x".repeat(1995), image_url: IMAGE }).issues).toEqual([]);
    expect(validateModelInput(hailuo, { prompt: "x".repeat(1996), image_url: IMAGE }).issues).toEqual([
      { field: "prompt", kind: "maxLength", message: "input.prompt is longer than 1995 characters (1996)" },
    ]);
  });

  test("reports missing prompt and image_url", () => {
    const kinds = validateModelInput(hailuo, {}).issues.map((issue) => [issue.field, issue.kind]);
    expect(kinds).toEqual([
      ["prompt", "required"],
      ["image_url", "required"],
    ]);
  });
});

describe("unknown fields", () => {
  test("suggests `prompt` for a typo'd `promt`", () => {
    const { issues } = validateModelInput(hailuo, { promt: "a cat", image_url: IMAGE });
    expect(issues).toContainEqual({
      field: "promt",
      kind: "unknown_field",
      message: "input.promt is not an input of minimax/Hailuo Video 01 Live; did you mean `prompt`?",
    });
    expect(issues).toContainEqual({ field: "prompt", kind: "required", message: "input.prompt is required" });
  });

  test("lists the model's inputs when nothing is close", () => {
    const { issues, value } = validateModelInput(hailuo, { prompt: "a", image_url: IMAGE, seed: 7 });
    expect(issues).toEqual([
      {
        field: "seed",
        kind: "unknown_field",
        message:
          "input.seed is not an input of minimax/Hailuo Video 01 Live; its inputs are `prompt`, `image_url`, `prompt_optimizer`",
      },
    ]);
    expect(value).not.toHaveProperty("seed");
  });
});

describe("deferred fields", () => {
  test("does not report a deferred required field as missing", () => {
    const { issues } = validateModelInput(aleph, { prompt: "p" }, { deferred: new Set(["video_url"]) });
    expect(issues).toEqual([]);
  });

  test("skips the checks of a deferred field and passes its value through", () => {
    const placeholder = "${{ steps.animate.output.video }}";
    const result = validateModelInput(
      aleph,
      { prompt: "p", video_url: placeholder, ratio: "${{ item.ratio }}" },
      { deferred: new Set(["video_url", "ratio"]) },
    );
    expect(result.issues).toEqual([]);
    expect(result.value).toEqual({ prompt: "p", video_url: placeholder, ratio: "${{ item.ratio }}" });
  });

  test("still checks the fields that are not deferred", () => {
    const { issues } = validateModelInput(aleph, { prompt: 1 }, { deferred: new Set(["video_url"]) });
    expect(issues.map((issue) => issue.kind)).toEqual(["type"]);
  });
});

describe("schemas from other catalog entries", () => {
  test("validates keywords the shipped models do not use, and nested values by path", () => {
    const entry: ModelEntry = {
      model_id: "acme/multi",
      input_schema: {
        type: "object",
        properties: {
          steps: { type: "integer", minimum: 1, maximum: 50 },
          image_urls: { type: "array", items: { type: "string", format: "uri" } },
        },
      },
    };
    const kinds = validateModelInput(entry, {
      steps: 0,
      image_urls: ["https://a/b.png", "not a uri"],
    }).issues.map((issue) => [issue.field, issue.kind, issue.message]);
    expect(kinds).toEqual([
      ["steps", "minimum", "input.steps must be >= 1 (got 0)"],
      ["image_urls", "format", 'input.image_urls[1] must match format "uri" (got "not a uri")'],
    ]);
  });

  test("throws a ModelSchemaError naming the file when the schema itself is unusable", () => {
    const entry: ModelEntry = {
      model_id: "acme/broken",
      source: "/models/broken.json",
      input_schema: { type: "object", properties: { a: { type: "strnig" } } },
    };
    expect(() => validateModelInput(entry, {})).toThrow(ModelSchemaError);
    expect(() => validateModelInput(entry, {})).toThrow(
      /^\/models\/broken\.json: input_schema is not a usable JSON Schema/,
    );
  });
});
