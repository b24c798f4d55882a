/**
 * Cost and budgets end to end (SPEC §9): the built CLI against an emulator on loopback that
 * serves prices and reports costs. What the emulator billed (its own ledger) is the truth
 * every view is checked against, to the cent.
 */
import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, ndjson, project } from "./apply-harness.js";

const HAILUO = "minimax/Hailuo Video 01 Live";
const ALEPH = "runwayml/runway-aleph/video-to-video";
// Hailuo $0.045/second × 5 s billed = $0.225 a request; Aleph $0.12 a request.
const PRICES = {
  [HAILUO]: { usd: 0.045, unit: "second" as const },
  [ALEPH]: { usd: 0.12, unit: "output" as const },
};

const cents = (usd: number) => Math.round(usd * 100);

interface PlanJson {
  estimate: {
    usd: number;
    saved_usd: number;
    models: { model: string; submit: number; reused: number; usd: number | null; basis: string }[];
  };
}

describe("cost and budgets through the CLI", () => {
  test("plan of a 20-row chain estimates the emulator's prices × what it submits; after the batch, $0 to spend and the saving; every view shows what the emulator billed, to the cent", async () => {
    const p = await project({ "wf.yaml": chainYaml(), "items.csv": itemsCsv(20) }, { prices: PRICES });
    const planned = await p.run(["--json", "plan", "wf.yaml"]);
    expect(planned.exitCode).toBe(0);
    const estimate = (JSON.parse(planned.stdout) as PlanJson).estimate;
    // 20 × $0.225 + 20 × $0.12: every step is sent (restyle is decided at run time).
    expect(estimate.usd).toBeCloseTo(20 * 0.225 + 20 * 0.12, 6);
    expect(estimate.saved_usd).toBe(0);
    const hailuo = estimate.models.find((model) => model.model === HAILUO)!;
    expect(hailuo).toMatchObject({ submit: 20, reused: 0 });
    expect(hailuo.basis).toContain("$0.045/second × 5 s");
    const text = await p.run(["plan", "wf.yaml"]);
    expect(text.stdout).toContain("estimate: $6.90 to spend (40 requests), $0.00 saved by reuse");

    const applied = await p.run(["--json", "apply", "wf.yaml"]);
    expect(applied.exitCode).toBe(0);
    const billed = p.api.state().billed;
    expect(billed.requests).toBe(40);
    expect(billed.usd).toBeCloseTo(6.9, 6);
    const events = ndjson(applied.stdout);
    const stepCosts = events
      .filter((event) => event.event === "step" && typeof event.cost === "number")
      .reduce((sum, event) => sum + (event.cost as number), 0);
    expect(cents(stepCosts)).toBe(cents(billed.usd));
    const end = events.find((event) => event.event === "run_finished")!;
    const endCost = end.cost as { usd: number; unknown: number };
    expect(cents(endCost.usd)).toBe(cents(billed.usd));
    expect(endCost.unknown).toBe(0);

    const status = JSON.parse((await p.run(["--json", "status"])).stdout) as {
      cost: { usd: number };
      stepCosts: { address: string; usd: number }[];
    };
    expect(cents(status.cost.usd)).toBe(cents(billed.usd));
    expect(status.stepCosts).toHaveLength(40);
    expect(status.stepCosts.find((step) => step.address === "clip/item-1/animate")!.usd).toBeCloseTo(
      0.225,
      6,
    );
    const statusText = (await p.run(["status"])).stdout;
    expect(statusText).toContain("cost: $6.90");
    expect(statusText).toContain("  clip/item-1/restyle $0.12");

    const runs = JSON.parse((await p.run(["--json", "runs"])).stdout) as { cost: { usd: number } }[];
    expect(cents(runs[0]!.cost.usd)).toBe(cents(billed.usd));
    expect((await p.run(["runs"])).stdout).toMatch(/COST[\s\S]*\$6\.90/);

    const report = JSON.parse((await p.run(["report", "--format", "json", "--out", "-"])).stdout) as {
      run: { cost: { usd: number } };
      jobs: { key: string; cost: { usd: number }; steps: { cost: { usd: number } }[] }[];
    };
    expect(cents(report.run.cost.usd)).toBe(cents(billed.usd));
    expect(report.jobs[0]!.cost.usd).toBeCloseTo(0.345, 6);
    expect(report.jobs[0]!.steps.map((step) => step.cost.usd)).toEqual([0.225, 0.12]);
    const markdown = (await p.run(["report", "--format", "md", "--out", "-"])).stdout;
    expect(markdown).toContain("- cost: $6.90");
    expect(markdown).toContain("### clip/item-1 — succeeded — $0.35");
    const html = (await p.run(["report", "--format", "html", "--out", "-"])).stdout;
    expect(html).toContain("cost $6.90");

    const again = await p.run(["plan", "wf.yaml"]);
    expect(again.stdout).toContain("estimate: $0.00 to spend (0 requests), $6.90 saved by reuse");
    // What the Hailuo requests cost is now history: the basis says so.
    expect(again.stdout).toContain("$0.045/second × 5 s (what 20 earlier requests at this API cost)");
  }, 60_000);

  test("apply --max-cost holds back what would overspend, exits 1 with the budget line; a larger budget submits exactly what was held", async () => {
    const p = await project(
      { "wf.yaml": chainYaml(), "items.csv": itemsCsv(9) },
      { prices: { [HAILUO]: { usd: 0.1, unit: "output" }, [ALEPH]: { usd: 0.1, unit: "output" } } },
    );
    const first = await p.run(["apply", "wf.yaml", "--max-cost", "0.6", "--concurrency", "1"]);
    expect(first.exitCode).toBe(1);
    const held = p.api.state();
    expect(held.billed.usd).toBeLessThanOrEqual(0.6);
    expect(held.submissions).toBe(6);
    expect(first.stdout).toContain("budget reached: $0.60 of $0.60 spent, 12 steps not submitted");
    expect(first.stdout).toMatch(/held: held back by the budget/);
    expect(first.stdout).toContain("estimate: at most $1.80 for 18 model steps before reuse; budget $0.60");

    const second = await p.run(["apply", "wf.yaml", "--max-cost", "5"]);
    expect(second.exitCode).toBe(0);
    expect(p.api.state().submissions).toBe(18);
    expect(p.api.submissions().byBody.every((group) => group.count === 1)).toBe(true);
    expect(second.stdout).toContain("budget: $1.20 of $5.00 spent");
  }, 60_000);

  test("retry keeps to the budget of the run it retries (the steps held back are among those it retries); retry --max-cost overrides it", async () => {
    const p = await project(
      { "wf.yaml": chainYaml(), "items.csv": itemsCsv(9) },
      { prices: { [HAILUO]: { usd: 0.1, unit: "output" }, [ALEPH]: { usd: 0.1, unit: "output" } } },
    );
    const applied = await p.run(["apply", "wf.yaml", "--max-cost", "0.6", "--concurrency", "1"]);
    expect(applied.exitCode).toBe(1);
    expect(p.api.state().submissions).toBe(6);

    const retried = await p.run(["retry", "--concurrency", "1"]);
    expect(retried.exitCode).toBe(1);
    expect(p.api.state().submissions).toBe(12);
    expect(retried.stdout).toContain("budget reached: $0.60 of $0.60 spent, 6 steps not submitted");

    const bad = await p.run(["retry", "--max-cost", "ten"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("Expected `--max-cost` to be an amount of USD above 0");
    expect(p.api.state().submissions).toBe(12);

    const larger = await p.run(["retry", "--max-cost", "5"]);
    expect(larger.exitCode).toBe(0);
    expect(p.api.state().submissions).toBe(18);
    expect(larger.stdout).toContain("budget: $0.60 of $5.00 spent");
    expect(p.api.submissions().byBody.every((group) => group.count === 1)).toBe(true);
  }, 60_000);

  test("budget.max_cost in the workflow is the budget without --max-cost; a budget that is not above 0 is refused at its line (exit 2)", async () => {
    const withBudget = (budget: string) => chainYaml().replace("jobs:", `budget: ${budget}\njobs:`);
    const p = await project(
      {
        "wf.yaml": withBudget("{ max_cost: 0.3 }"),
        "bad.yaml": withBudget("{ max_cost: 0 }"),
        "items.csv": itemsCsv(4),
      },
      { prices: { [HAILUO]: { usd: 0.1, unit: "output" }, [ALEPH]: { usd: 0.1, unit: "output" } } },
    );
    const bad = await p.run(["apply", "bad.yaml"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml:\d+:\d+/);
    expect(bad.stderr).toContain("max_cost");
    const applied = await p.run(["apply", "wf.yaml", "--concurrency", "1"]);
    expect(applied.exitCode).toBe(1);
    expect(p.api.state().submissions).toBe(3);
    expect(applied.stdout).toContain("budget reached: $0.30 of $0.30 spent");
  }, 60_000);

  test("--max-cost that is not an amount, and an API without a price under a budget: exit 2, nothing sent", async () => {
    const p = await project(
      { "wf.yaml": chainYaml(), "items.csv": itemsCsv(2) },
      { prices: { [ALEPH]: null } },
    );
    const bad = await p.run(["apply", "wf.yaml", "--max-cost", "lots"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("Expected `--max-cost` to be an amount of USD above 0");
    const unpriced = await p.run(["apply", "wf.yaml", "--max-cost", "3"]);
    expect(unpriced.exitCode).toBe(2);
    expect(unpriced.stderr).toContain(`the API gives no price for ${ALEPH}`);
    expect(p.api.state().submissions).toBe(0);
    const planned = await p.run(["plan", "wf.yaml"]);
    expect(planned.stdout).toContain(
      `${ALEPH}: unknown for 2 to submit — unknown: the API gives no price for this model`,
    );
    expect(planned.stdout).toContain("+ unknown to spend");
  }, 60_000);

  test("an API that reports no cost: status, runs and the summary say unknown, never $0", async () => {
    const p = await project(
      { "wf.yaml": chainYaml(), "items.csv": itemsCsv(2) },
      { prices: PRICES, reportCost: false },
    );
    const applied = await p.run(["apply", "wf.yaml"]);
    expect(applied.exitCode).toBe(0);
    expect(applied.stdout).toContain("cost: unknown (the API reported no cost)");
    expect((await p.run(["status"])).stdout).toContain("cost: unknown");
    expect((await p.run(["runs"])).stdout).toMatch(/succeeded .* unknown /);
    const status = JSON.parse((await p.run(["--json", "status"])).stdout) as { cost: unknown };
    expect(status.cost).toEqual({ usd: null, unknown: 4 });
  }, 60_000);
});
