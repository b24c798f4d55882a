import path from "node:path";
import { describe, expect, test } from "vitest";
import type { Output } from "../src/cli/context.js";
import { runPlanCommand } from "../src/cli/commands/plan.js";
import { runCli } from "../src/cli/program.js";
import { apiOriginOf } from "../src/api/origin.js";
import { fingerprintModelStep, type Plan } from "../src/plan/index.js";
import { openSqliteStore } from "../src/store/sqlite.js";
import { CHAIN, HAILUO, testdir } from "./workflow-testdir.js";

function capture(): { output: Output; text: () => { stdout: string; stderr: string } } {
  let stdout = "";
  let stderr = "";
  return {
    output: {
      stdout: (chunk) => (stdout += chunk.endsWith("\n") ? chunk : `${chunk}\n`),
      stderr: (chunk) => (stderr += chunk.endsWith("\n") ? chunk : `${chunk}\n`),
    },
    text: () => ({ stdout, stderr }),
  };
}

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { output, text } = capture();
  const code = await runCli(argv, output);
  return { code, ...text() };
}

const flow = (text = CHAIN): string => path.join(testdir({ "flow.yaml": text }), "flow.yaml");

/** A state database at `file` in which teaser/cat/animate succeeded at RunComfy with this fingerprint. */
function seedSucceeded(file: string, step: { runId: string; fingerprint: string; finishedAt: number }): void {
  const store = openSqliteStore(file, { secrets: [] });
  const address = "teaser/cat/animate";
  store.createRun({
    id: step.runId,
    workflowName: "chain",
    workflowFile: "flow.yaml",
    kind: "apply",
    plan: null,
    options: {},
    startedAt: step.finishedAt - 10,
    pid: 1,
    hostname: "host",
    apiOrigin: apiOriginOf(undefined),
  });
  store.insertSteps(
    step.runId,
    [
      {
        address,
        jobId: "teaser",
        instanceKey: "cat",
        stepId: "animate",
        kind: "model",
        state: "pending",
        fingerprint: step.fingerprint,
      },
    ],
    step.finishedAt - 10,
  );
  store.updateStep(step.runId, address, {
    updatedAt: step.finishedAt,
    state: "succeeded",
    finishedAt: step.finishedAt,
    output: { video: "https://cdn.example.com/cat.mp4" },
  });
  store.close();
}

describe("runflow plan", () => {
  test("prints each instance's steps, their decisions and the exact request bodies", async () => {
    const { code, stdout, stderr } = await run("plan", flow());
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toContain("chain: 4 steps in 2 instances — 2 to submit, 0 reused, 2 deferred, 0 to run");
    expect(stdout).toContain(`  animate  submit  ${HAILUO}`);
    expect(stdout).toContain(
      '      body {"prompt":"a cat","image_url":"https://example.com/cat.png","prompt_optimizer":true}',
    );
    expect(stdout).toContain(
      '      input {"prompt":"noir","video_url":"${{ steps.animate.output.video }}"}  (known at run time: video_url)',
    );
  });

  test("writes the Plan as one JSON document with --json", async () => {
    const { code, stdout } = await run("plan", flow(), "--json");
    expect(code).toBe(0);
    const plan = JSON.parse(stdout) as Plan;
    expect(plan.counts).toEqual({
      total: 4,
      reuse: 0,
      submit: 2,
      reattach: 0,
      unknown: 0,
      deferred: 2,
      run: 0,
    });
    expect(plan.steps.map((step) => step.address)).toEqual([
      "teaser/cat/animate",
      "teaser/cat/restyle",
      "teaser/dog/animate",
      "teaser/dog/restyle",
    ]);
  });

  test("narrows with --only and applies --var", async () => {
    const { stdout } = await run(
      "plan",
      flow(),
      "--json",
      "--only",
      "teaser/animate",
      "--var",
      "style=anime",
    );
    const plan = JSON.parse(stdout) as Plan;
    expect(plan.counts.total).toBe(2);
    const all = JSON.parse((await run("plan", flow(), "--json", "--var", "style=anime")).stdout) as Plan;
    expect(all.steps[1]?.input?.prompt).toBe("anime");
  });

  test("exits 2 on an unknown --only, and on an invalid workflow with its diagnostics", async () => {
    const only = await run("plan", flow(), "--only", "nope");
    expect(only.code).toBe(2);
    expect(only.stderr).toContain("error: --only nope: the workflow has no job `nope`");
    const file = flow(CHAIN.replace("vars.style", "vars.stlye"));
    const invalid = await run("plan", file);
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toBe("");
    expect(invalid.stderr).toContain(`${file}:19:19: jobs.teaser.steps[1].input.prompt: \${{ vars.stlye }}`);
  });

  test("shows reuse from the state database, and none with --fresh", async () => {
    const dir = testdir({ "flow.yaml": CHAIN });
    const state = path.join(dir, "state.db");
    const body = { prompt: "a cat", image_url: "https://example.com/cat.png", prompt_optimizer: true };
    seedSucceeded(state, {
      runId: "run-1",
      fingerprint: fingerprintModelStep(HAILUO, body),
      finishedAt: 1_000,
    });
    const { output, text } = capture();
    const file = path.join(dir, "flow.yaml");
    const plan = await runPlanCommand(file, { runId: "run-2", now: 2_000, state, env: {} }, output);
    expect(plan.counts.reuse).toBe(1);
    expect(text().stdout).toContain(
      "      reused from run run-1 (teaser/cat/animate, finished 1970-01-01T00:00:01.000Z)",
    );
    const fresh = await runPlanCommand(
      file,
      { runId: "run-3", now: 2_000, fresh: true, state, env: {} },
      capture().output,
    );
    expect(fresh.counts.reuse).toBe(0);
  });
});
