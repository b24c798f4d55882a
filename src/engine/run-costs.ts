/**
 * A run's costs as its steps are sent and end (SPEC §9): each model's estimate per request,
 * the budget when there is one, and the reservation of each attempt in flight. Every model
 * step asks here before its POST (model-step.ts); nothing else decides whether to spend.
 *
 * An actual cost above its estimate raises that model's estimate at once (the mean of what
 * its requests cost this run, when higher), so every later decision is tighter.
 */
import { type BudgetFigures, CostBudget, currentEstimate } from "../cost/budget.js";
import { formatUsd, type CostTotal } from "../cost/money.js";
import type { RequestEstimate } from "../cost/estimate.js";
import type { AttemptKey } from "../store/types.js";

function keyOf(key: AttemptKey): string {
  return `${key.runId}\u0000${key.address}\u0000${key.attempt}`;
}

/**
 * What a model step asks of its run's costs (model-step.ts): the budget's decision before
 * each POST, and what each request came to. In one process the answers are at once
 * (RunCosts); for a run whose steps several processes execute, they come from the budget
 * kept in the shared state (shared-run-costs.ts) — hence the promises.
 */
export interface RunSpending {
  /** Whether the attempt may be sent: true, with its estimate reserved, when it fits the budget (or there is none). */
  reserve(key: AttemptKey, model: string): boolean | Promise<boolean>;
  /** The attempt's request ended (or may have been created and is lost): `actual` when the API reported it. */
  settle(key: AttemptKey, model: string, actual: number | undefined): void | Promise<void>;
  /** Nothing was created: the reservation goes back. */
  release(key: AttemptKey): void | Promise<void>;
  /**
   * Another process's claim of the attempt won (the fence, SPEC §10): this one will not send
   * it, and whatever this process reserved for it is its own to give back — never the
   * winner's reservation.
   */
  forgo(key: AttemptKey): void | Promise<void>;
  /** What the step's attempts in this run cost so far (as this process saw them); undefined when none was billed. */
  stepCost(address: string): CostTotal | undefined;
  /** The error a held-back step records. */
  heldMessage(): string;
  /** Where the run's budget stands; undefined without one. */
  budgetFigures(): BudgetFigures | undefined | Promise<BudgetFigures | undefined>;
}

/** The error of a step held back by the budget, with where the budget stood. */
export function heldBackMessage(figures: BudgetFigures): string {
  return `held back by the budget: ${formatUsd(figures.spentMicros + figures.reservedMicros)} of ${formatUsd(figures.maxMicros)} spent or in flight; not submitted (\`runflow apply\` with a larger --max-cost submits it)`;
}

/** A run's costs in one process: every step execution asks the same object. */
export class RunCosts implements RunSpending {
  readonly budget: CostBudget | undefined;
  readonly #estimates: Map<string, RequestEstimate>;
  readonly #reserved = new Map<string, number>();
  readonly #actual = new Map<string, { sum: number; count: number }>();
  /** What each step's attempts of this run cost, as the NDJSON `step` events and the views tell it. */
  readonly #byStep = new Map<string, CostTotal>();

  constructor(estimates: ReadonlyMap<string, RequestEstimate>, maxMicros: number | undefined) {
    this.#estimates = new Map(estimates);
    this.budget = maxMicros === undefined ? undefined : new CostBudget(maxMicros);
  }

  /** What one request of the model is expected to cost now; undefined when unknown. */
  estimate(model: string): number | undefined {
    return currentEstimate(this.#estimates.get(model)?.micros, this.#actual.get(model));
  }

  /**
   * Whether the attempt may be sent: true, with its estimate reserved, when it fits the
   * budget (or there is none). Synchronous: the decision and the reservation are one step.
   */
  reserve(key: AttemptKey, model: string): boolean {
    const micros = this.estimate(model) ?? 0;
    if (this.budget && !this.budget.tryReserve(micros)) return false;
    this.#reserved.set(keyOf(key), micros);
    return true;
  }

  /** The attempt's request ended (or may have been created and is lost): `actual` when the API reported it. */
  settle(key: AttemptKey, model: string, actual: number | undefined): void {
    const id = keyOf(key);
    const reserved = this.#reserved.get(id);
    this.#reserved.delete(id);
    if (actual !== undefined) {
      const seen = this.#actual.get(model) ?? { sum: 0, count: 0 };
      this.#actual.set(model, { sum: seen.sum + actual, count: seen.count + 1 });
    }
    const step = this.#byStep.get(key.address) ?? { micros: 0, known: 0, unknown: 0 };
    if (actual !== undefined)
      this.#byStep.set(key.address, { ...step, micros: step.micros + actual, known: step.known + 1 });
    else this.#byStep.set(key.address, { ...step, unknown: step.unknown + 1 });
    // A re-attached request reserved nothing: what it cost is spent all the same.
    this.budget?.settle(reserved ?? 0, actual ?? (reserved === undefined ? undefined : reserved));
  }

  /** Nothing was created: the reservation goes back. */
  release(key: AttemptKey): void {
    const id = keyOf(key);
    const reserved = this.#reserved.get(id);
    if (reserved === undefined) return;
    this.#reserved.delete(id);
    this.budget?.release(reserved);
  }

  /** In one process a claim is never lost; were it, its reservation is this process's own. */
  forgo(key: AttemptKey): void {
    this.release(key);
  }

  budgetFigures(): BudgetFigures | undefined {
    return this.budget?.figures;
  }

  /** What the step's attempts in this run cost so far; undefined when none was billed. */
  stepCost(address: string): CostTotal | undefined {
    return this.#byStep.get(address);
  }

  /** The error a held-back step records. */
  heldMessage(): string {
    return heldBackMessage(this.budget!.figures);
  }
}
