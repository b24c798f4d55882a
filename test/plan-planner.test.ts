import path from "node:path";
import { describe, expect, test } from "vitest";
import { UsageError } from "../src/errors.js";
import {
  emptyPriorState,
  fingerprintModelStep,
  fingerprintRunStep,
  planInstances,
  planRun,
  planTotals,
  priorStateOf,
  type ReusableStep,
} from "../src/plan/index.js";
import { planSummaryLines, planToJson } from "../src/render/plan.js";
import { resolveValue } from "../src/template/resolve.js";
import type { Workflow } from "../src/workflow/types.js";
import { ALEPH, CHAIN, HAILUO, load } from "./workflow-testdir.js";

const NOW = Date.parse("2025-03-04T05:06:07Z");
const DAY = 86_400_000;

const catBody = { prompt: "a cat", image_url: "https://example.com/cat.png", prompt_optimizer: true };
const catFingerprint = fingerprintModelStep(HAILUO, catBody);

function succeeded(fingerprint: string, overrides: Partial<ReusableStep> = {}) {
  return {
    workflowName: "chain",
    fingerprint,
    runId: "run-old",
    address: "teaser/cat/animate",
    finishedAt: NOW - DAY,
    requestId: "req-1",
    output: { video: "https://cdn.example.com/cat.mp4" },
    files: { video: "/outputs/chain/cat/animate.mp4" },
    ...overrides,
  };
}

async function chain(): Promise<Workflow> {
  return load(CHAIN);
}

describe("planInstances", () => {
  test("plans the instances `later` names after the others, each at its place in the plan", async () => {
    const workflow = await load(CHAIN);
    const whole = planRun(workflow, emptyPriorState, { runId: "r", now: NOW });
    const instances = [
      ...planInstances(workflow, emptyPriorState, {
        runId: "r",
        now: NOW,
        later: (instance) => instance === "teaser/cat",
      }),
    ];
    expect(instances.map((instance) => instance.steps[0]!.instanceKey)).toEqual(["dog", "cat"]);
    const perInstance = whole.steps.length / 2;
    expect(instances.map((instance) => instance.position)).toEqual([perInstance, 0]);
    // Put back at their places, they are the plan planRun makes.
    const placed = instances.sort((a, b) => a.position - b.position).flatMap((instance) => instance.steps);
    expect(placed).toEqual(whole.steps);
    expect(planTotals(workflow)).toEqual({ steps: whole.steps.length, jobs: 2 });
  });
});

describe("planRun decisions", () => {
  test("submits a fully known step with its exact body (defaults filled) and fingerprint", async () => {
    const plan = planRun(await chain(), emptyPriorState, { runId: "r1", now: NOW });
    const animate = plan.steps[0]!;
    expect(animate).toMatchObject({
      address: "teaser/cat/animate",
      kind: "model",
      model: HAILUO,
      decision: "submit",
      body: catBody,
      fingerprint: catFingerprint,
      deferredFields: [],
      dependsOn: [],
    });
    expect(animate.input).toBeUndefined();
  });

  test("defers a step that reads an earlier step, keeping the reference as template text", async () => {
    const plan = planRun(await chain(), emptyPriorState, { runId: "r1", now: NOW });
    const restyle = plan.steps[1]!;
    expect(restyle).toMatchObject({
      address: "teaser/cat/restyle",
      decision: "deferred",
      input: { prompt: "noir", video_url: "${{ steps.animate.output.video }}" },
      deferredFields: ["video_url"],
      dependsOn: ["teaser/cat/animate"],
    });
    expect(restyle.body).toBeUndefined();
    expect(restyle.fingerprint).toBeUndefined();
    expect(plan.counts).toEqual({
      total: 4,
      reuse: 0,
      submit: 2,
      reattach: 0,
      unknown: 0,
      deferred: 2,
      run: 0,
    });
  });

  test("reuses a step whose fingerprint already succeeded, and resolves the steps after it", async () => {
    const prior = priorStateOf([succeeded(catFingerprint)]);
    const plan = planRun(await chain(), prior, { runId: "r2", now: NOW });
    const [animate, restyle] = plan.steps;
    expect(animate).toMatchObject({ decision: "reuse", reuse: { runId: "run-old", requestId: "req-1" } });
    const restyleBody = { prompt: "noir", video_url: "https://cdn.example.com/cat.mp4", ratio: "1280:720" };
    expect(restyle).toMatchObject({
      decision: "submit",
      body: restyleBody,
      fingerprint: fingerprintModelStep(ALEPH, restyleBody),
    });
    expect(plan.counts).toEqual({
      total: 4,
      reuse: 1,
      submit: 2,
      reattach: 0,
      unknown: 0,
      deferred: 1,
      run: 0,
    });
  });

  test("reuses a whole chain that already succeeded", async () => {
    const restyleBody = { prompt: "noir", video_url: "https://cdn.example.com/cat.mp4", ratio: "1280:720" };
    const prior = priorStateOf([
      succeeded(catFingerprint),
      succeeded(fingerprintModelStep(ALEPH, restyleBody), {
        address: "teaser/cat/restyle",
        requestId: "req-2",
      }),
    ]);
    const plan = planRun(await chain(), prior, { runId: "r3", now: NOW });
    expect(plan.steps.slice(0, 2).map((step) => step.decision)).toEqual(["reuse", "reuse"]);
  });

  test("does not reuse a success older than cache.ttl", async () => {
    const workflow = await chain();
    const prior = priorStateOf([succeeded(catFingerprint, { finishedAt: NOW - 6 * DAY - 1 })]);
    expect(planRun(workflow, prior, { runId: "r", now: NOW }).steps[0]!.decision).toBe("submit");
    const fresh = priorStateOf([succeeded(catFingerprint, { finishedAt: NOW - 6 * DAY })]);
    expect(planRun(workflow, fresh, { runId: "r", now: NOW }).steps[0]!.decision).toBe("reuse");
  });

  test("reuses nothing with fresh", async () => {
    const prior = priorStateOf([succeeded(catFingerprint)]);
    const plan = planRun(await chain(), prior, { runId: "r", now: NOW, fresh: true });
    expect(plan.counts.reuse).toBe(0);
  });

  test("looks reuse up under the workflow's own name", async () => {
    const prior = priorStateOf([{ ...succeeded(catFingerprint), workflowName: "another" }]);
    expect(planRun(await chain(), prior, { runId: "r", now: NOW }).counts.reuse).toBe(0);
  });
});

describe("fingerprints", () => {
  test("do not depend on key order", () => {
    expect(fingerprintModelStep(HAILUO, { a: 1, b: { c: 2, d: 3 } })).toBe(
      fingerprintModelStep(HAILUO, { b: { d: 3, c: 2 }, a: 1 }),
    );
  });

  test("are the same for the same input written in another order", async () => {
    const reordered = CHAIN.replace(
      '          prompt: "${{ item.prompt }}"\n          image_url: "${{ item.image }}"',
      '          image_url: "${{ item.image }}"\n          prompt: "${{ item.prompt }}"',
    );
    const a = planRun(await chain(), emptyPriorState, { runId: "r", now: NOW });
    const b = planRun(await load(reordered), emptyPriorState, { runId: "r", now: NOW });
    expect(b.steps[0]!.fingerprint).toBe(a.steps[0]!.fingerprint);
  });

  test("change with the model, the input, and a default made explicit to another value", () => {
    expect(fingerprintModelStep(ALEPH, catBody)).not.toBe(catFingerprint);
    expect(fingerprintModelStep(HAILUO, { ...catBody, prompt_optimizer: false })).not.toBe(catFingerprint);
  });

  test("of a run step depend on argv, env and input file contents", () => {
    const base = fingerprintRunStep(["ffmpeg", "-i", "a.mp4"], { A: "1" }, { "a.mp4": "aa" });
    expect(fingerprintRunStep(["ffmpeg", "-i", "a.mp4"], { A: "1" }, { "a.mp4": "aa" })).toBe(base);
    expect(fingerprintRunStep(["ffmpeg", "-i", "a.mp4"], { A: "1" }, { "a.mp4": "bb" })).not.toBe(base);
    expect(fingerprintRunStep(["ffmpeg", "-i", "a.mp4"], { A: "2" }, { "a.mp4": "aa" })).not.toBe(base);
  });
});

describe("--only", () => {
  test("plans a step with the steps it depends on, and no others", async () => {
    const workflow = await load(`${CHAIN}      - id: poster
        run: [ffmpeg, -i, "\${{ steps.restyle.files.video }}", poster.jpg]
`);
    const plan = planRun(workflow, emptyPriorState, { runId: "r", now: NOW, only: ["teaser/restyle"] });
    expect(plan.steps.map((step) => step.address)).toEqual([
      "teaser/cat/animate",
      "teaser/cat/restyle",
      "teaser/dog/animate",
      "teaser/dog/restyle",
    ]);
  });

  test("plans every step of a job named alone", async () => {
    const plan = planRun(await chain(), emptyPriorState, { runId: "r", now: NOW, only: ["teaser"] });
    expect(plan.counts.total).toBe(4);
  });

  test("refuses an unknown job or step, naming what exists", async () => {
    const workflow = await chain();
    expect(() => planRun(workflow, emptyPriorState, { runId: "r", now: NOW, only: ["teasr"] })).toThrow(
      "--only teasr: the workflow has no job `teasr`",
    );
    expect(() =>
      planRun(workflow, emptyPriorState, { runId: "r", now: NOW, only: ["teaser/poster"] }),
    ).toThrow(UsageError);
    expect(() =>
      planRun(workflow, emptyPriorState, { runId: "r", now: NOW, only: ["teaser/cat/animate"] }),
    ).toThrow("expected JOB or JOB/STEP");
  });
});

describe("what a planned step carries", () => {
  test("renders the outputs folder per instance, absolute, from the workflow's folder", async () => {
    const workflow = await load(
      CHAIN.replace("name: chain\n", 'name: chain\noutputs: "out/${{ run.date }}/${{ job.key }}"\n'),
    );
    const plan = planRun(workflow, emptyPriorState, { runId: "r", now: NOW });
    expect(plan.steps[0]!.outputsDir).toBe(path.join(workflow.dir, "out", "2025-03-04", "cat"));
    expect(plan.steps[2]!.outputsDir).toBe(path.join(workflow.dir, "out", "2025-03-04", "dog"));
  });

  test("gives a run step its argv, working folder and output paths, decided at run time", async () => {
    const workflow = await load(`${CHAIN}      - id: poster
        run: [ffmpeg, -y, -i, "\${{ steps.restyle.files.video }}", -frames:v, 1, poster.jpg]
        cwd: stills
        env: { RUN: "\${{ run.id }}" }
        outputs: { poster: poster.jpg }
`);
    const plan = planRun(workflow, emptyPriorState, { runId: "run-7", now: NOW });
    const poster = plan.steps[2]!;
    const outputs = path.join(workflow.dir, "outputs", "chain", "cat");
    expect(poster).toMatchObject({
      kind: "run",
      decision: "run",
      argv: ["ffmpeg", "-y", "-i", "${{ steps.restyle.files.video }}", "-frames:v", "1", "poster.jpg"],
      cwd: path.join(outputs, "stills"),
      env: { RUN: "run-7" },
      outputNames: { poster: path.join(outputs, "stills", "poster.jpg") },
      deferredFields: ["run"],
      dependsOn: ["teaser/cat/restyle"],
    });
    expect(poster.fingerprint).toBeUndefined();
    expect(plan.counts.run).toBe(2);
  });

  test("escapes item text put into a deferred input, so the engine's resolution keeps it literal", async () => {
    const text = CHAIN.replace(/for_each:\n.*\n.*\n/, "for_each: items.csv\n").replace(
      '"${{ vars.style }}"',
      '"${{ item.prompt }} ${{ steps.animate.request_id }}"',
    );
    const workflow = await load(text, {
      "items.csv": "id,prompt,image\ncat,say ${{ env.HOME }},https://example.com/cat.png\n",
    });
    const restyle = planRun(workflow, emptyPriorState, { runId: "r", now: NOW }).steps[1]!;
    const context = {
      item: {},
      vars: {},
      workflow: { name: "chain" },
      job: { id: "teaser", key: "cat" },
      run: { id: "r", date: "2025-03-04" },
      env: {},
      steps: { animate: { request_id: "req-9", output: { video: "https://v" } } },
    };
    expect(resolveValue(restyle.input, context)).toEqual({
      prompt: "say ${{ env.HOME }} req-9",
      video_url: "https://v",
    });
  });

  test("shares one retry policy object between the instances of a step", async () => {
    const plan = planRun(await chain(), emptyPriorState, { runId: "r", now: NOW });
    expect(plan.steps[0]!.retry).toBe(plan.steps[2]!.retry);
    expect(plan.steps[0]!.retry).toEqual({
      attempts: 3,
      backoffMs: 10_000,
      maxBackoffMs: 300_000,
      resubmitUnknown: false,
    });
  });
});

describe("showing a plan", () => {
  test("prints per instance each step's decision and exact body", async () => {
    const prior = priorStateOf([succeeded(catFingerprint)]);
    const plan = planRun(await chain(), prior, { runId: "r", now: NOW });
    const lines = planSummaryLines(plan, path.dirname(plan.workflow.file));
    expect(lines[0]).toBe("chain: 4 steps in 2 instances — 2 to submit, 1 reused, 1 deferred, 0 to run");
    expect(lines).toContain("teaser/cat  → outputs/chain/cat");
    expect(lines).toContain(`  animate  reuse  ${HAILUO}`);
    expect(lines).toContain(
      `      reused from run run-old (teaser/cat/animate, finished ${new Date(NOW - DAY).toISOString()})`,
    );
    expect(lines).toContain(`      body ${JSON.stringify(catBody)}`);
    expect(lines).toContain(`  restyle  deferred  ${ALEPH}  (after animate)`);
  });

  test("writes the plan as JSON that reads back equal", async () => {
    const plan = planRun(await chain(), emptyPriorState, { runId: "r", now: NOW });
    expect(JSON.parse(planToJson(plan))).toEqual(JSON.parse(JSON.stringify(plan)));
    expect(JSON.parse(planToJson(plan))).toMatchObject({
      runId: "r",
      createdAt: NOW,
      workflow: { name: "chain", concurrency: 8 },
    });
  });
});
