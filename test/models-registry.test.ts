import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { ExitCode } from "../src/errors.js";
import {
  builtinModelsDir,
  loadModelRegistry,
  modelFileName,
  ModelSchemaError,
  requireModel,
  UnknownModelError,
  type ModelEntry,
} from "../src/models/index.js";

const ALEPH = "runwayml/runway-aleph/video-to-video";
const HAILUO = "minimax/Hailuo Video 01 Live";

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-models-"));
  tempDirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function entry(modelId: string, properties: ModelEntry["input_schema"]["properties"] = {}): ModelEntry {
  return { model_id: modelId, input_schema: { type: "object", properties } };
}

function writeJson(dir: string, name: string, data: unknown): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileSync(file, typeof data === "string" ? data : JSON.stringify(data));
  return file;
}

describe("loadModelRegistry", () => {
  test("loads the two shipped models from the package's schemas/models folder", () => {
    const registry = loadModelRegistry({ cwd: tempDir() });
    expect(registry.list().map((e) => e.model_id)).toEqual([HAILUO, ALEPH]);
    const aleph = registry.get(ALEPH);
    expect(aleph?.input_schema.required).toEqual(["prompt", "video_url", "ratio"]);
    expect(aleph?.source).toBe(path.join(builtinModelsDir(), "runwayml--runway-aleph--video-to-video.json"));
  });

  test("keeps the shipped schema files exactly as RunComfy publishes them, non-standard keys included", () => {
    const file = path.join(builtinModelsDir(), "minimax--hailuo-video-01-live.json");
    const raw = JSON.parse(readFileSync(file, "utf8")) as ModelEntry;
    expect(raw.input_schema.title).toBe("入力スキーマ");
    expect(raw.input_schema.properties.image_url?.validations).toHaveLength(4);
  });

  test("adds the models of an extra folder and lets them override built-in ones by id", () => {
    const extra = tempDir();
    writeJson(extra, "mine.json", entry("acme/upscale", { image_url: { type: "string" } }));
    writeJson(extra, "aleph.json", entry(ALEPH, { prompt: { type: "string" } }));
    const registry = loadModelRegistry({ cwd: tempDir(), dirs: [extra] });
    expect(registry.list().map((e) => e.model_id)).toEqual(["acme/upscale", HAILUO, ALEPH]);
    expect(Object.keys(registry.get(ALEPH)?.input_schema.properties ?? {})).toEqual(["prompt"]);
    expect(registry.get(ALEPH)?.source).toBe(path.join(extra, "aleph.json"));
  });

  test("loads the project's schemas/models folder, and a later --models folder overrides it", () => {
    const project = tempDir();
    writeJson(path.join(project, "schemas", "models"), "a.json", entry("acme/a", { x: { type: "string" } }));
    const extra = tempDir();
    writeJson(extra, "a.json", entry("acme/a", { y: { type: "string" } }));
    expect(
      loadModelRegistry({ cwd: project, includeBuiltin: false })
        .list()
        .map((e) => e.model_id),
    ).toEqual(["acme/a"]);
    const overridden = loadModelRegistry({ cwd: project, includeBuiltin: false, dirs: [extra] });
    expect(Object.keys(overridden.get("acme/a")?.input_schema.properties ?? {})).toEqual(["y"]);
  });

  test("resolves a relative --models folder against cwd", () => {
    const project = tempDir();
    writeJson(path.join(project, "my-models"), "a.json", entry("acme/a"));
    const registry = loadModelRegistry({ cwd: project, includeBuiltin: false, dirs: ["my-models"] });
    expect(registry.get("acme/a")).toBeDefined();
  });

  test("ignores files that are not *.json", () => {
    const extra = tempDir();
    writeJson(extra, "README.md", "# not a model");
    expect(loadModelRegistry({ cwd: tempDir(), includeBuiltin: false, dirs: [extra] }).list()).toEqual([]);
  });

  test("refuses a file that is not JSON, naming the file, with exit code 2", () => {
    const extra = tempDir();
    const file = writeJson(extra, "broken.json", "{ model_id: ");
    const load = () => loadModelRegistry({ cwd: tempDir(), dirs: [extra] });
    expect(load).toThrow(ModelSchemaError);
    expect(load).toThrow(`${file}: not valid JSON`);
    try {
      load();
    } catch (error) {
      expect((error as ModelSchemaError).exitCode).toBe(ExitCode.invalid);
    }
  });

  test("refuses an entry of the wrong shape, naming the file and each wrong place", () => {
    const extra = tempDir();
    const file = writeJson(extra, "bad.json", {
      model_id: "",
      input_schema: { type: "object", properties: { prompt: "a string" } },
    });
    expect(() => loadModelRegistry({ cwd: tempDir(), dirs: [extra] })).toThrow(
      `${file}: 2 problems:\n  model_id must be a non-empty string (got "")\n` +
        `  input_schema.properties.prompt must be an object (got "a string")`,
    );
  });

  test("refuses a media rule runflow cannot check rather than skipping it", () => {
    const extra = tempDir();
    writeJson(
      extra,
      "rule.json",
      entry("acme/clip", {
        video_url: {
          type: "string",
          validations: [
            { validation_rule: "duration_s<" as never, validation_value: 10, validation_error: "Too long." },
          ],
        },
      }),
    );
    expect(() => loadModelRegistry({ cwd: tempDir(), dirs: [extra] })).toThrow(
      'input_schema.properties.video_url.validations[0].validation_rule "duration_s<" is not a rule runflow can check',
    );
  });

  test("refuses two files for the same model in one folder", () => {
    const extra = tempDir();
    writeJson(extra, "one.json", entry("acme/a"));
    writeJson(extra, "two.json", entry("acme/a"));
    expect(() => loadModelRegistry({ cwd: tempDir(), dirs: [extra] })).toThrow(
      /two\.json: model "acme\/a" is also defined by .*one\.json in the same folder/,
    );
  });

  test("refuses a --models folder that does not exist", () => {
    expect(() => loadModelRegistry({ cwd: tempDir(), dirs: ["nowhere"] })).toThrow(
      /--models nowhere: no such folder/,
    );
  });
});

describe("requireModel", () => {
  const registry = loadModelRegistry({ cwd: os.tmpdir() });

  test("returns the entry of a known model", () => {
    expect(requireModel(registry, HAILUO).model_id).toBe(HAILUO);
  });

  test("refuses an unknown model with did-you-mean and how to add one", () => {
    let caught: unknown;
    try {
      requireModel(registry, "minimax/hailuo-video-01-live");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnknownModelError);
    const error = caught as UnknownModelError;
    expect(error.exitCode).toBe(ExitCode.invalid);
    expect(error.message).toBe(
      'no schema for model "minimax/hailuo-video-01-live"; did you mean "minimax/Hailuo Video 01 Live"?',
    );
    expect(error.hint).toContain("schemas/models/");
    expect(error.hint).toContain("runflow models pull --search");
  });

  test("suggests the full id for a typo or a bare model name", () => {
    expect(registry.suggest("runwayml/runway-alpeh/video-to-video")).toEqual([ALEPH]);
    expect(registry.suggest("runway-aleph")).toEqual([ALEPH]);
    expect(registry.suggest("stability/sdxl")).toEqual([]);
  });
});

describe("modelFileName", () => {
  test("names files the way the shipped schemas are named", () => {
    expect(modelFileName(ALEPH)).toBe("runwayml--runway-aleph--video-to-video.json");
    expect(modelFileName(HAILUO)).toBe("minimax--hailuo-video-01-live.json");
    expect(modelFileName("Acme/Up Scale (v2)!")).toBe("acme--up-scale-v2.json");
  });
});
