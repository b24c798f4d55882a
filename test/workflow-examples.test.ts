/**
 * Every example in workflows/ is a working workflow: it names the schema for editors, the
 * schema accepts it as written, and the loader (with the real model registry) resolves it.
 * Media URLs are not probed here.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { loadModelRegistry } from "../src/models/registry.js";
import { emptyPriorState, planRun } from "../src/plan/index.js";
import { loadWorkflow } from "../src/workflow/load.js";
import { workflowValidator } from "../src/workflow/schema.js";

const dir = path.join(import.meta.dirname, "..", "workflows");
const examples = readdirSync(dir).filter((name) => name.endsWith(".yaml"));
const registry = loadModelRegistry();

describe("the example workflows", () => {
  test("exist: a chain over a CSV, a matrix, and one with a run step", () => {
    expect(examples.sort()).toEqual(["looks.yaml", "teaser-posters.yaml", "teasers.yaml"]);
  });

  test.each(examples)("%s names the schema for editors on its first line", (name) => {
    const firstLine = readFileSync(path.join(dir, name), "utf8").split("\n")[0];
    expect(firstLine).toBe("# yaml-language-server: $schema=../schemas/workflow.schema.json");
  });

  test.each(examples)("%s passes the JSON Schema as written", (name) => {
    const validate = workflowValidator();
    const valid = validate(parse(readFileSync(path.join(dir, name), "utf8")));
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  test.each(examples)("%s loads and plans with the shipped models", async (name) => {
    const workflow = await loadWorkflow(path.join(dir, name), { registry, env: {} });
    const plan = planRun(workflow, emptyPriorState, { runId: "r", now: 0 });
    expect(plan.counts.total).toBeGreaterThan(0);
    expect(plan.counts.submit).toBeGreaterThan(0);
  });

  test("teasers reads its stills from a var, so a run can point them at the emulator", async () => {
    const workflow = await loadWorkflow(path.join(dir, "teasers.yaml"), {
      registry,
      env: {},
      vars: { image_host: "http://127.0.0.1:8787" },
    });
    const plan = planRun(workflow, emptyPriorState, { runId: "r", now: 0 });
    expect(plan.steps[0]?.body?.image_url).toBe(
      "http://127.0.0.1:8787/media/image.png?w=1280&h=720&name=cat",
    );
  });
});
