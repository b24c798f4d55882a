import { describe, expect, test } from "vitest";
import { decodePlan, encodePlan, isStoredPlan, readStoredPlan } from "../src/engine/index.js";
import { EventBus } from "../src/engine/events.js";
import { beginRun, RunRecorder, streamOf } from "../src/engine/run-lifecycle.js";
import { readStoredPlanSoFar } from "../src/engine/stored-plan.js";
import { emptyPriorState, fingerprintModelStep, planRun, priorStateOf } from "../src/plan/index.js";
import { sqliteStateStoreOf } from "../src/store/index.js";
import { systemClock } from "../src/util/clock.js";
import { open, tempDbPath } from "./store-helpers.js";
import { CHAIN, HAILUO, load } from "./workflow-testdir.js";

const NOW = Date.parse("2025-03-04T05:06:07Z");

/** What the run's recording needs: the store, its events, a clock stopped at NOW. */
const runDeps = (port: ReturnType<typeof sqliteStateStoreOf>) => ({
  store: port,
  events: new EventBus(),
  clock: { ...systemClock, now: () => NOW },
});

/** The run every test records. */
const RUN_META = {
  kind: "apply",
  file: "flow.yaml",
  options: {},
  concurrency: 2,
  apiOrigin: "https://api.example",
} as const;

/** CHAIN with a run step, and an earlier success for the cat's first step: every kind of decision. */
async function mixedPlan(options: { withPrior?: boolean } = {}) {
  const workflow = await load(`${CHAIN}      - id: poster
        run: [ffmpeg, -y, -i, "\${{ steps.restyle.files.video }}", -frames:v, 1, poster.jpg]
        cwd: stills
        env: { RUN: "\${{ run.id }}" }
        outputs: { poster: poster.jpg }
`);
  const catBody = { prompt: "a cat", image_url: "https://example.com/cat.png", prompt_optimizer: true };
  const prior = priorStateOf([
    {
      workflowName: "chain",
      fingerprint: fingerprintModelStep(HAILUO, catBody),
      runId: "run-old",
      address: "teaser/cat/animate",
      finishedAt: NOW - 1000,
      requestId: "req-1",
      output: { video: "https://cdn.example.com/cat.mp4" },
      files: { video: "/outputs/chain/cat/animate.mp4" },
    },
  ]);
  return planRun(workflow, options.withPrior === false ? emptyPriorState : prior, {
    runId: "run-new",
    now: NOW,
  });
}

describe("the plan stored with a run (for retry)", () => {
  test("comes back from the database identical to the plan that was run", async () => {
    const plan = await mixedPlan();
    expect(new Set(plan.steps.map((step) => step.decision))).toEqual(
      new Set(["reuse", "submit", "deferred", "run"]),
    );
    const store = open(tempDbPath());
    const port = sqliteStateStoreOf(store);
    await beginRun(runDeps(port), plan, RUN_META);

    const saved = await readStoredPlan(port, plan.runId);
    const records = new Map(store.getSteps(plan.runId).map((record) => [record.address, record]));
    if (!saved) throw new Error("not a stored plan");
    expect(decodePlan(saved, records)).toEqual(plan);
  });

  test("writes what the steps of one job share once, not once per item", async () => {
    const plan = await mixedPlan({ withPrior: false });
    const stored = encodePlan(plan);
    expect(stored.steps).toHaveLength(plan.steps.length);
    // Three steps per job (animate, restyle, poster), whatever the number of items.
    expect(stored.shapes).toHaveLength(3);
    // Request bodies of fully known steps live in the steps table, not in the stored plan.
    expect(JSON.stringify(stored)).not.toContain("prompt_optimizer");
  });

  test("recorded out of plan order, in parts, it reads back as the whole plan in order", async () => {
    const plan = await mixedPlan();
    const store = open(tempDbPath());
    const port = sqliteStateStoreOf(store);
    const recorder = new RunRecorder(runDeps(port), streamOf(plan), RUN_META);
    await recorder.start();
    // Until the recorder finishes, the run has no plan retry could read.
    expect(await readStoredPlan(port, plan.runId)).toBeUndefined();
    // The dog's instance first, then the cat's (a resumed run plans what is left first).
    const perInstance = plan.steps.length / 2;
    await recorder.record([{ position: perInstance, steps: plan.steps.slice(perInstance) }]);
    await recorder.record([{ position: 0, steps: plan.steps.slice(0, perInstance) }]);
    expect(await recorder.finish()).toEqual(plan.counts);

    expect(store.getSteps(plan.runId).map((step) => step.address)).toEqual(
      plan.steps.map((step) => step.address),
    );
    const saved = await readStoredPlan(port, plan.runId);
    if (!saved) throw new Error("not a stored plan");
    const records = new Map(store.getSteps(plan.runId).map((record) => [record.address, record]));
    expect(decodePlan(saved, records)).toEqual(plan);
  });

  test("recorded to be opened early (a shared state), each part reads back as it comes, and retry sees no plan until it is whole", async () => {
    const plan = await mixedPlan();
    const store = open(tempDbPath());
    const port = sqliteStateStoreOf(store);
    const recorder = new RunRecorder(runDeps(port), streamOf(plan), RUN_META, { openEarly: true });
    await recorder.start();
    expect(await readStoredPlanSoFar(port, plan.runId)).toBeUndefined();
    const perInstance = plan.steps.length / 2;
    const records = () => new Map(store.getSteps(plan.runId).map((record) => [record.address, record]));

    await recorder.record([{ position: 0, steps: plan.steps.slice(0, perInstance) }]);
    const first = await readStoredPlanSoFar(port, plan.runId);
    if (!first) throw new Error("no plan record after the first part");
    expect(first.plan.partial).toBe(true);
    expect(first.parts).toBe(1);
    expect(decodePlan(first.plan, records()).steps).toEqual(plan.steps.slice(0, perInstance));
    // Not a plan retry may work from: its apply may die before the rest is recorded.
    expect(await readStoredPlan(port, plan.runId)).toBeUndefined();

    await recorder.record([{ position: perInstance, steps: plan.steps.slice(perInstance) }]);
    // The parts recorded since the first: the second's steps only.
    const later = await readStoredPlanSoFar(port, plan.runId, first.parts);
    if (!later) throw new Error("no plan record after the second part");
    expect(later.parts).toBe(2);
    expect(decodePlan(later.plan, records()).steps).toEqual(plan.steps.slice(perInstance));
    expect(await readStoredPlan(port, plan.runId)).toBeUndefined();

    await recorder.finish();
    const saved = await readStoredPlan(port, plan.runId);
    if (!saved) throw new Error("not a stored plan");
    expect(saved.partial).toBeUndefined();
    expect(decodePlan(saved, records())).toEqual(plan);
  });

  test("is recognised only in its own format", () => {
    expect(isStoredPlan({ steps: [] })).toBe(false);
    expect(isStoredPlan(undefined)).toBe(false);
  });
});
