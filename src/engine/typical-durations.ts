/**
 * How long each model's requests take, learned as the run goes: an exponentially weighted
 * moving average of the server-measured durations (`finished_at − created_at`). The poll
 * schedule waits until just after it, so most requests cost one status poll and one result.
 */
/** A change of a tenth is worth telling; less moves no ETA. */
const REPORT_STEP = 0.1;

export class TypicalDurations {
  readonly #byModel = new Map<string, number>();
  /** Weight of the newest observation: recent requests matter more, one outlier does not dominate. */
  readonly #alpha: number;
  /** Hears a model's duration when it is first known, then when it moved by REPORT_STEP or more. */
  readonly #onChange: (model: string, typicalMs: number) => void;
  readonly #reported = new Map<string, number>();

  constructor(alpha = 0.3, onChange: (model: string, typicalMs: number) => void = () => {}) {
    this.#alpha = alpha;
    this.#onChange = onChange;
  }

  observe(model: string, durationMs: number | undefined): void {
    if (durationMs === undefined || !Number.isFinite(durationMs) || durationMs < 0) return;
    const previous = this.#byModel.get(model);
    const next = previous === undefined ? durationMs : previous + this.#alpha * (durationMs - previous);
    this.#byModel.set(model, next);
    // Not every request's end: a view needs to hear a real change, not 100,000 small ones.
    const reported = this.#reported.get(model);
    if (reported === undefined || Math.abs(next - reported) >= REPORT_STEP * Math.max(reported, 1)) {
      this.#reported.set(model, next);
      this.#onChange(model, Math.round(next));
    }
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
