/**
 * The budget of one apply (SPEC §9): a request is sent only if what this apply has spent
 * (the actual cost of its finished attempts, or their estimate when the API reported none)
 * + the estimates of its requests in flight + this request's estimate stay within
 * `--max-cost`. Decided and reserved in one synchronous call, so concurrent steps (one event
 * loop) can never both take the last dollars; settled with the actual cost when it arrives.
 *
 * Once a request is refused the budget is reached: every later one is held back too, so a
 * batch stops at a clear point instead of slipping cheaper steps through, and the next apply
 * (with a larger budget) submits exactly what was held.
 */
/** Where a budget stands: what the run's attempts spent and hold, and whether it was reached. */
export interface BudgetFigures {
  maxMicros: number;
  /** Actual costs (or estimates for unreported ones) of the run's finished attempts. */
  spentMicros: number;
  /** Estimates of the attempts in flight. */
  reservedMicros: number;
  /** A request was refused: every later one is too. */
  reached: boolean;
  /** Requests held back so far. */
  held: number;
}

/**
 * The rule of SPEC §9, one place for every keeper of a budget (this class in one process,
 * the state stores for a run shared by several): a request of `micros` may be sent only if
 * spent + in flight + it stay within the budget, and only while the budget is not reached.
 */
export function fitsBudget(figures: BudgetFigures, micros: number): boolean {
  return !figures.reached && figures.spentMicros + figures.reservedMicros + micros <= figures.maxMicros;
}

/**
 * A model's estimate per request now: the one it started with, raised to the mean of what
 * its requests of this run actually cost when that is higher (rounded up), so that an actual
 * cost above its estimate tightens every later decision.
 */
export function currentEstimate(
  before: number | undefined,
  actual: { sum: number; count: number } | undefined,
): number | undefined {
  if (actual === undefined || actual.count === 0) return before;
  const mean = Math.ceil(actual.sum / actual.count);
  return before === undefined ? mean : Math.max(before, mean);
}

export class CostBudget {
  readonly maxMicros: number;
  #spent = 0;
  #reserved = 0;
  #reached = false;
  #held = 0;

  constructor(maxMicros: number) {
    this.maxMicros = maxMicros;
  }

  /** Reserves `micros` for a request about to be sent; false (and it is held back) when it does not fit. */
  tryReserve(micros: number): boolean {
    if (fitsBudget(this.figures, micros)) {
      this.#reserved += micros;
      return true;
    }
    this.#reached = true;
    this.#held += 1;
    return false;
  }

  /** The request ended: its reservation is replaced by what it cost (`actual`), or by the estimate when unknown. */
  settle(reservedMicros: number, actual: number | undefined): void {
    this.#reserved -= reservedMicros;
    this.#spent += actual ?? reservedMicros;
  }

  /** Nothing was created (the POST was refused or never sent): the reservation is given back. */
  release(reservedMicros: number): void {
    this.#reserved -= reservedMicros;
  }

  /** Actual costs (or estimates for unreported ones) of this apply's finished attempts. */
  get spentMicros(): number {
    return this.#spent;
  }

  get reservedMicros(): number {
    return this.#reserved;
  }

  get reached(): boolean {
    return this.#reached;
  }

  /** Requests held back so far. */
  get held(): number {
    return this.#held;
  }

  get figures(): BudgetFigures {
    return {
      maxMicros: this.maxMicros,
      spentMicros: this.#spent,
      reservedMicros: this.#reserved,
      reached: this.#reached,
      held: this.#held,
    };
  }
}
