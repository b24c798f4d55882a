/**
 * How long each model's requests take, learned as the run goes: an exponentially weighted
 * moving average of the server-measured durations (`finished_at − created_at`). The poll
 * schedule waits until just after it, so most requests cost one status poll and one result.
 */
export class TypicalDurations {
  readonly #byModel = new Map<string, number>();
  /** Weight of the newest observation: recent requests matter more, one outlier does not dominate. */
  readonly #alpha: number;

  constructor(alpha = 0.3) {
    this.#alpha = alpha;
  }

  observe(model: string, durationMs: number | undefined): void {
    if (durationMs === undefined || !Number.isFinite(durationMs) || durationMs < 0) return;
    const previous = this.#byModel.get(model);
    this.#byModel.set(
      model,
      previous === undefined ? durationMs : previous + this.#alpha * (durationMs - previous),
    );
  }

  /** Starts the model at what earlier runs saw (a no-op once this run has seen one finish). */
  seed(model: string, durationMs: number | undefined): void {
    if (!this.#byModel.has(model)) this.observe(model, durationMs);
  }

  /** undefined until one request of the model has finished (or was seeded). */
  get(model: string): number | undefined {
    const value = this.#byModel.get(model);
    return value === undefined ? undefined : Math.round(value);
  }
}
