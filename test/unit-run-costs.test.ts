/**
 * RunCosts (src/engine/run-costs.ts) and the CostBudget under it: the one place a model step
 * asks before its POST (SPEC §9). An attempt reserves its estimate when it fits the budget;
 * the reservation is released when nothing was created, or settled with what it cost; an
 * actual cost above the estimate tightens every later decision; once one request is held
 * back every later one is too.
 */
import { describe, expect, test } from "vitest";
import type { RequestEstimate } from "../src/cost/estimate.js";
import { RunCosts } from "../src/engine/run-costs.js";
import type { AttemptKey } from "../src/store/types.js";

const USD = 1_000_000;

function costs(estimates: Record<string, number | undefined>, maxMicros?: number): RunCosts {
  const map = new Map<string, RequestEstimate>(
    Object.entries(estimates).map(([model, micros]) => [model, { model, micros, basis: "test" }]),
  );
  return new RunCosts(map, maxMicros);
}

const key = (address: string, attempt = 1, runId = "run-1"): AttemptKey => ({ runId, address, attempt });

describe("RunCosts: estimates", () => {
  test("a model's estimate is the one given; a model without one has none", () => {
    const run = costs({ hailuo: 250_000, aleph: undefined });
    expect(run.estimate("hailuo")).toBe(250_000);
    expect(run.estimate("aleph")).toBeUndefined();
    expect(run.estimate("never-heard-of")).toBeUndefined();
  });

  test("an actual cost above the estimate raises it to the mean of what this run's requests cost; a lower one never lowers it", () => {
    const run = costs({ hailuo: 100_000 });
    run.settle(key("a"), "hailuo", 50_000);
    expect(run.estimate("hailuo")).toBe(100_000);
    run.settle(key("b"), "hailuo", 400_000);
    // mean(50,000, 400,000) = 225,000
    expect(run.estimate("hailuo")).toBe(225_000);
    run.settle(key("c"), "hailuo", undefined);
    // An unreported cost is not a zero: the mean is unchanged.
    expect(run.estimate("hailuo")).toBe(225_000);
  });

  test("a model without an estimate learns one from its first reported costs (rounded up)", () => {
    const run = costs({});
    run.settle(key("a"), "aleph", 50_000);
    run.settle(key("b"), "aleph", 50_001);
    expect(run.estimate("aleph")).toBe(50_001);
  });
});

describe("RunCosts: without a budget", () => {
  test("every attempt may be sent, even one whose cost is unknown", () => {
    const run = costs({ hailuo: 10 * USD });
    expect(run.budget).toBeUndefined();
    for (let i = 0; i < 100; i++) expect(run.reserve(key(`s${i}`), "hailuo")).toBe(true);
    expect(run.reserve(key("x"), "unpriced")).toBe(true);
  });
});

describe("RunCosts: under a budget", () => {
  test("an attempt is sent only if spent + in flight + its estimate stay within the budget; the last one fitting exactly is sent", () => {
    const run = costs({ hailuo: 250_000 }, USD);
    for (const address of ["a", "b", "c", "d"])
      expect(run.reserve(key(address), "hailuo"), address).toBe(true);
    expect(run.budget!.reservedMicros).toBe(USD);
    expect(run.budget!.reached).toBe(false);

    expect(run.reserve(key("e"), "hailuo")).toBe(false);
    expect(run.budget!.reached).toBe(true);
    expect(run.budget!.held).toBe(1);
    expect(run.budget!.reservedMicros).toBe(USD);
  });

  test("once one attempt is held back, every later one is, even one that would fit", () => {
    const run = costs({ aleph: 900_000, hailuo: 50_000 }, USD);
    expect(run.reserve(key("a"), "aleph")).toBe(true);
    expect(run.reserve(key("b"), "aleph")).toBe(false);
    expect(run.reserve(key("c"), "hailuo")).toBe(false);
    // Even after the one in flight gave its reservation back.
    run.release(key("a"));
    expect(run.reserve(key("d"), "hailuo")).toBe(false);
    expect(run.budget!.held).toBe(3);
  });

  test("release gives the reservation back once; an unknown attempt releases nothing", () => {
    const run = costs({ hailuo: 400_000 }, USD);
    run.reserve(key("a"), "hailuo");
    run.reserve(key("b"), "hailuo");
    expect(run.budget!.reservedMicros).toBe(800_000);
    run.release(key("a"));
    expect(run.budget!.reservedMicros).toBe(400_000);
    run.release(key("a"));
    run.release(key("never-reserved"));
    expect(run.budget!.reservedMicros).toBe(400_000);
    expect(run.budget!.spentMicros).toBe(0);
    // The space given back is usable.
    expect(run.reserve(key("c"), "hailuo")).toBe(true);
  });

  test("attempts are told apart by run, step and attempt number", () => {
    const run = costs({ hailuo: 100_000 }, USD);
    run.reserve(key("a", 1), "hailuo");
    run.reserve(key("a", 2), "hailuo");
    run.reserve(key("a", 1, "run-2"), "hailuo");
    run.release(key("a", 1));
    expect(run.budget!.reservedMicros).toBe(200_000);
  });

  test("settle replaces the reservation by the actual cost, or by the estimate when the API reported none", () => {
    const run = costs({ hailuo: 400_000 }, USD);
    run.reserve(key("a"), "hailuo");
    run.reserve(key("b"), "hailuo");
    run.settle(key("a"), "hailuo", 150_000);
    expect(run.budget!.spentMicros).toBe(150_000);
    expect(run.budget!.reservedMicros).toBe(400_000);
    run.settle(key("b"), "hailuo", undefined);
    expect(run.budget!.spentMicros).toBe(550_000);
    expect(run.budget!.reservedMicros).toBe(0);
  });

  test("a re-attached request reserved nothing, but what it cost is spent all the same", () => {
    const run = costs({ hailuo: 100_000 }, USD);
    run.settle(key("resumed"), "hailuo", 700_000);
    expect(run.budget!.spentMicros).toBe(700_000);
    expect(run.budget!.reservedMicros).toBe(0);
    // With no cost reported and nothing reserved, nothing is known to add.
    run.settle(key("resumed-2"), "hailuo", undefined);
    expect(run.budget!.spentMicros).toBe(700_000);
  });

  test("an actual cost above its estimate tightens the very next decision", () => {
    const run = costs({ hailuo: 200_000 }, USD);
    expect(run.reserve(key("a"), "hailuo")).toBe(true);
    run.settle(key("a"), "hailuo", 600_000);
    // At the old estimate 600,000 + 200,000 would fit; at the learned 600,000 it does not.
    expect(run.estimate("hailuo")).toBe(600_000);
    expect(run.reserve(key("b"), "hailuo")).toBe(false);
  });

  test("a model without an estimate reserves nothing and is sent while the budget is not reached", () => {
    const run = costs({ hailuo: USD }, USD);
    expect(run.reserve(key("free"), "unpriced")).toBe(true);
    expect(run.reserve(key("a"), "hailuo")).toBe(true);
    expect(run.reserve(key("free-2"), "unpriced")).toBe(true);
    expect(run.budget!.reservedMicros).toBe(USD);
  });

  test("the message a held step records says what is spent of what, and how to submit it", () => {
    const run = costs({ hailuo: 300_000 }, 1_250_000);
    run.reserve(key("a"), "hailuo");
    run.settle(key("a"), "hailuo", 450_000);
    run.reserve(key("b"), "hailuo");
    expect(run.heldMessage()).toBe(
      "held back by the budget: $0.90 of $1.25 spent or in flight; not submitted (`runflow apply` with a larger --max-cost submits it)",
    );
  });
});

describe("RunCosts: what each step cost", () => {
  test("nothing until an attempt of the step ended; then the sum of known costs and the count of unknown ones", () => {
    const run = costs({ hailuo: 100_000 });
    expect(run.stepCost("a")).toBeUndefined();
    run.settle(key("a", 1), "hailuo", 120_000);
    run.settle(key("a", 2), "hailuo", undefined);
    run.settle(key("a", 3), "hailuo", 80_000);
    run.settle(key("b", 1), "hailuo", 5);
    expect(run.stepCost("a")).toEqual({ micros: 200_000, known: 2, unknown: 1 });
    expect(run.stepCost("b")).toEqual({ micros: 5, known: 1, unknown: 0 });
  });

  test("a released attempt (nothing created) costs the step nothing", () => {
    const run = costs({ hailuo: 100_000 }, USD);
    run.reserve(key("a"), "hailuo");
    run.release(key("a"));
    expect(run.stepCost("a")).toBeUndefined();
  });
});
