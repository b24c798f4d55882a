import PQueue from "p-queue";

/**
 * Caps requests in flight: `concurrency` across the run, and `limits[model]` per model
 * (SPEC §4). A task holds its model slot while it waits for a global slot, so a model at its
 * limit never occupies global slots that other models could use.
 */
export class RequestScheduler {
  readonly #global: PQueue;
  readonly #perModel = new Map<string, PQueue>();

  constructor(concurrency: number, limits: Readonly<Record<string, number>> = {}) {
    this.#global = new PQueue({ concurrency });
    for (const [model, limit] of Object.entries(limits)) {
      this.#perModel.set(model, new PQueue({ concurrency: limit }));
    }
  }

  /** Runs `task` once a slot is free for `model` (or any slot when the model has no limit). */
  async run<T>(model: string | undefined, task: () => Promise<T>): Promise<T> {
    const modelQueue = model === undefined ? undefined : this.#perModel.get(model);
    if (!modelQueue) return this.#global.add(task);
    return modelQueue.add(() => this.#global.add(task));
  }

  get inFlight(): number {
    return this.#global.pending;
  }

  get waiting(): number {
    let waiting = this.#global.size;
    for (const queue of this.#perModel.values()) waiting += queue.size;
    return waiting;
  }
}
