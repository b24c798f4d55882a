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
    if (!this.#reached && this.#spent + this.#reserved + micros <= this.maxMicros) {
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
}
