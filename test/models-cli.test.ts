import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import type { Output } from "../src/cli/context.js";
import { runCli } from "../src/cli/program.js";

const ALEPH = "runwayml/runway-aleph/video-to-video";
const HAILUO = "minimax/Hailuo Video 01 Live";

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const output: Output = {
    stdout: (text) => (stdout += text.endsWith("\n") ? text : `${text}\n`),
    stderr: (text) => (stderr += text.endsWith("\n") ? text : `${text}\n`),
  };
  const code = await runCli(argv, output);
  return { code, stdout, stderr };
}

const extra = mkdtempSync(path.join(os.tmpdir(), "runflow-models-cli-"));
afterAll(() => rmSync(extra, { recursive: true, force: true }));

describe("runflow models", () => {
  test("lists each shipped model with a one-line summary of its inputs", async () => {
    const { code, stdout, stderr } = await run("models");
    expect(code).toBe(0);
    expect(stderr).toBe("");
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(
      /^minimax\/Hailuo Video 01 Live\s+prompt\* \(≤1995\), image_url\* \(width > 300 px/,
    );
    expect(lines[1]).toMatch(
      /^runwayml\/runway-aleph\/video-to-video\s+video_url\* \(< 16 MB\), prompt\* \(≤1000\), ratio\*=1280:720 \(8 choices\), image_url \(< 16 MB\)$/,
    );
  });

  test("prints one JSON document with --json", async () => {
    const { code, stdout } = await run("models", "--json");
    expect(code).toBe(0);
    const document = JSON.parse(stdout) as {
      models: { model_id: string; inputs: { name: string; required: boolean }[] }[];
    };
    expect(document.models.map((model) => model.model_id)).toEqual([HAILUO, ALEPH]);
    expect(document.models[0]?.inputs.map((input) => [input.name, input.required])).toEqual([
      ["prompt", true],
      ["image_url", true],
      ["prompt_optimizer", false],
    ]);
  });

  test("includes the models of a --models folder", async () => {
    writeFileSync(
      path.join(extra, "upscale.json"),
      JSON.stringify({ model_id: "acme/upscale", input_schema: { type: "object", properties: {} } }),
    );
    const { code, stdout } = await run("--models", extra, "models");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^acme\/upscale/);
  });

  test("exits 2 naming the file when a --models folder holds a malformed schema", async () => {
    const broken = mkdtempSync(path.join(os.tmpdir(), "runflow-models-broken-"));
    try {
      writeFileSync(path.join(broken, "bad.json"), "{");
      const { code, stderr } = await run("--models", broken, "models");
      expect(code).toBe(2);
      expect(stderr).toContain(`error: ${path.join(broken, "bad.json")}: not valid JSON`);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });
});

describe("runflow models show", () => {
  test("prints a model's inputs with their constraints and its outputs", async () => {
    const { code, stdout } = await run("models", "show", ALEPH);
    expect(code).toBe(0);
    expect(stdout).toContain(ALEPH);
    expect(stdout).toMatch(/prompt\s+string, required, at most 1000 characters/);
    expect(stdout).toMatch(/video_url\s+string, required, media: < 16 MB/);
    expect(stdout).toMatch(/ratio\s+string, required, default "1280:720", one of "1584:672"/);
    expect(stdout).toContain("outputs: image, video, images, videos");
  });

  test("prints the catalog entry as JSON with --json", async () => {
    const { code, stdout } = await run("models", "show", HAILUO, "--json");
    expect(code).toBe(0);
    const entry = JSON.parse(stdout) as { model_id: string; input_schema: { required: string[] } };
    expect(entry.model_id).toBe(HAILUO);
    expect(entry.input_schema.required).toEqual(["prompt", "image_url"]);
  });

  test("exits 2 with did-you-mean for an unknown model", async () => {
    const { code, stdout, stderr } = await run("models", "show", "runwayml/runway-alpeh/video-to-video");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain(
      `error: no schema for model "runwayml/runway-alpeh/video-to-video"; did you mean "${ALEPH}"?`,
    );
    expect(stderr).toContain("runflow models pull --search");
  });

  test("exits 2 when the id is missing", async () => {
    expect((await run("models", "show")).code).toBe(2);
  });
});
