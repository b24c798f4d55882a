/**
 * The costs of a run whose steps several processes execute (SPEC §9 across §10): its budget
 * lives in the shared state (port.ts BudgetsPort), and every decision to send a request is
 * made there, atomically across the workers of the run — the actual cost of its finished
 * attempts + the estimates of those in flight + this request's estimate, within the cap. An
 * actual cost above its estimate raises the model's estimate in the state, so every later
 * decision of every worker is tighter at once.
 *
 * What each step cost, as this process saw it (the step events), is kept here in memory,
 * as in one process (run-costs.ts).
 */
import type { BudgetFigures } from "../cost/budget.js";
import type { CostTotal } from "../cost/money.js";
import type { BudgetsPort } from "../store/port.js";
import type { AttemptKey } from "../store/types.js";
import { heldBackMessage, RunCosts, type RunSpending } from "./run-costs.js";

export class SharedRunCosts implements RunSpending {
  readonly #budgets: BudgetsPort;
  readonly #runId: string;
  /** Per step, what this process saw its attempts cost (no budget: that is the state's). */
  readonly #seen = new RunCosts(new Map(), undefined);
  /** Where the budget stood at this process's last refusal: what a held-back step says. */
  #lastRefusal: BudgetFigures | undefined;

  constructor(budgets: BudgetsPort, runId: string) {
    this.#budgets = budgets;
    this.#runId = runId;
  }

  async reserve(key: AttemptKey, model: string): Promise<boolean> {
    const decision = await this.#budgets.reserve(key, model);
    if (!decision.granted) this.#lastRefusal = decision;
    return decision.granted;
  }

  async settle(key: AttemptKey, model: string, actual: number | undefined): Promise<void> {
    this.#seen.settle(key, model, actual);
    await this.#budgets.settle(key, model, actual);
  }

  release(key: AttemptKey): Promise<void> {
    return this.#budgets.release(key);
  }

  /** The reservation of an attempt another process claimed is that process's: left as it is. */
  forgo(): void {}

  stepCost(address: string): CostTotal | undefined {
    return this.#seen.stepCost(address);
  }

  heldMessage(): string {
    const figures = this.#lastRefusal;
    return figures
      ? heldBackMessage(figures)
      : "held back by the budget; not submitted (`runflow apply` with a larger --max-cost submits it)";
  }

  budgetFigures(): Promise<BudgetFigures | undefined> {
    return this.#budgets.get(this.#runId);
  }
}
