/**
 * The budget (SPEC §9) in-process: apply against the emulator over HTTP, real SQLite. The
 * emulator's own ledger (`state().billed`: what its results report as `cost`) is the proof
 * of what was spent, not runflow's accounting.
 */
import { describe, expect, test } from "vitest";
import path from "node:path";
import type { RunFinishedEvent } from "../src/engine/events.js";
import { apply, chainWorkflow, emulator, items, openStore, tempDir, writeFiles } from "./engine-harness.js";

const HAILUO = "minimax/Hailuo Video 01 Live";
const ALEPH = "runwayml/runway-aleph/video-to-video";

/** A small deterministic generator (mulberry32): the emulator's durations per seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function finished(events: readonly { event: string }[]): RunFinishedEvent {
  return events.find((event) => event.event === "run_finished") as RunFinishedEvent;
}

describe("a budget never exceeded", () => {
  test("a third of a batch at concurrency 16, random durations, many seeds: the emulator never bills past the budget, and a larger budget finishes exactly the rest", async () => {
    // 15 items × (Hailuo $0.20 + Aleph $0.10) = $4.50; the budget covers a third.
    const BUDGET_USD = 1.5;
    for (let seed = 1; seed <= 16; seed++) {
      const api = await emulator({
        random: seeded(seed),
        duration: { min: 0, max: 40 },
        queueDelay: { min: 0, max: 10 },
        prices: {
          [HAILUO]: { usd: 0.05, unit: "second", seconds: 4 },
          [ALEPH]: { usd: 0.1, unit: "output" },
        },
      });
      const dir = tempDir();
      writeFiles(dir, {
        "wf.yaml": chainWorkflow({ items: items(15), mediaBase: api.url, concurrency: 16 }),
      });
      const first = await apply(dir, "wf.yaml", api, { maxCostMicros: BUDGET_USD * 1_000_000 });
      const billedFirst = api.state().billed;
      expect(billedFirst.usd, `seed ${seed}`).toBeLessThanOrEqual(BUDGET_USD);
      expect(first.exitCode, `seed ${seed}`).toBe(1);
      const held = first.counts.held ?? 0;
      expect(held, `seed ${seed}`).toBeGreaterThan(0);
      const budget = finished(first.events).budget!;
      expect(budget.reached).toBe(true);
      expect(budget.notSubmitted).toBe(held + (first.counts.blocked ?? 0));
      // Nothing held was ever sent.
      expect(api.state().submissions).toBe(30 - budget.notSubmitted);

      const second = await apply(dir, "wf.yaml", api, { maxCostMicros: 10 * 1_000_000 });
      expect(second.exitCode, `seed ${seed}`).toBe(0);
      // Exactly the rest: every request body sent once in all, 30 in all.
      expect(api.state().submissions).toBe(30);
      expect(api.submissions().byBody.every((group) => group.count === 1)).toBe(true);
      expect(api.state().billed.usd).toBeCloseTo(4.5, 6);
      expect(second.counts.reused).toBe(30 - budget.notSubmitted);
    }
  }, 120_000);

  test("an actual cost above its estimate tightens every later decision: the batch stops within the budget", async () => {
    // The price says $0.10 a request; the emulator charges double.
    const api = await emulator({ prices: { [HAILUO]: { usd: 0.1, unit: "output" } }, costFactor: 2 });
    const dir = tempDir();
    writeFiles(dir, { "wf.yaml": oneStepWorkflow(api.url, 10, 1) });
    const applied = await apply(dir, "wf.yaml", api, { maxCostMicros: 1_100_000 });
    // 5 × $0.20 = $1.00; a sixth at its first estimate ($0.10) would fit $1.10 and bill $1.20.
    expect(api.state().submissions).toBe(5);
    expect(api.state().billed.usd).toBeCloseTo(1.0, 6);
    expect(applied.counts.held).toBe(5);
    expect(applied.exitCode).toBe(1);
  });

  test("an API that reports no cost: every cost is unknown, and the budget counts the estimate", async () => {
    const api = await emulator({ prices: { [HAILUO]: { usd: 0.1, unit: "output" } }, reportCost: false });
    const dir = tempDir();
    writeFiles(dir, { "wf.yaml": oneStepWorkflow(api.url, 8, 2) });
    const applied = await apply(dir, "wf.yaml", api, { maxCostMicros: 500_000 });
    expect(api.state().submissions).toBe(5);
    expect(applied.counts.held).toBe(3);
    const ends = applied.steps.filter((step) => step.state === "succeeded");
    expect(ends).toHaveLength(5);
    for (const step of ends) {
      expect(step.cost).toBeUndefined();
      expect(step.costUnknown).toBe(1);
    }
    expect(finished(applied.events).cost).toEqual({ usd: null, unknown: 5 });
    const store = openStore(dir);
    expect(store.runCost(applied.runId)).toEqual({ micros: 0, known: 0, unknown: 5 });
  });

  test("a model without a price under a budget is refused before anything is sent (exit 2); an assumption lets it run", async () => {
    const api = await emulator({ prices: { [HAILUO]: null } });
    const dir = tempDir();
    writeFiles(dir, { "wf.yaml": oneStepWorkflow(api.url, 3, 2) });
    const refused = await apply(dir, "wf.yaml", api, { maxCostMicros: 1_000_000 }).then(
      () => undefined,
      (error: unknown) => error as { exitCode: number; message: string },
    );
    expect(refused?.exitCode).toBe(2);
    expect(refused?.message).toContain(`the API gives no price for ${HAILUO}`);
    expect(api.state().submissions).toBe(0);

    writeFiles(dir, {
      "wf.yaml": oneStepWorkflow(api.url, 3, 2, `budget: { assume: { "${HAILUO}": { usd: 0.4 } } }`),
    });
    const applied = await apply(dir, "wf.yaml", api, { maxCostMicros: 1_000_000 });
    // $0.40 assumed a request: two fit $1.00.
    expect(api.state().submissions).toBe(2);
    expect(applied.counts.held).toBe(1);
    expect(path.isAbsolute(applied.statePath)).toBe(true);
  });
});

function oneStepWorkflow(media: string, count: number, concurrency: number, extra = ""): string {
  const rows = items(count).map((item) => `      - { id: ${item.id}, prompt: "${item.prompt}" }`);
  return `version: 1
name: one
concurrency: ${concurrency}
defaults:
  poll: { interval: 20ms, max_interval: 200ms }
${extra}
jobs:
  clip:
    for_each:
${rows.join("\n")}
    steps:
      - id: animate
        model: ${HAILUO}
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "${media}/media/image.png?w=640&h=480"
`;
}
