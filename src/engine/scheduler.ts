import PQueue from "p-queue";
import type { WaitReason } from "./events.js";

/**
 * Caps requests in flight: `concurrency` across the run, and `limits[model]` per model
 * (SPEC §4). A task holds its model slot while it waits for a global slot, so a model at its
 * limit never occupies global slots that other models could use.
 */
export class RequestScheduler {
  readonly #global: PQueue;
  readonly #concurrency: number;
  readonly #perModel = new Map<string, { queue: PQueue; limit: number }>();

  constructor(concurrency: number, limits: Readonly<Record<string, number>> = {}) {
    this.#concurrency = concurrency;
    this.#global = new PQueue({ concurrency });
    for (const [model, limit] of Object.entries(limits)) {
      this.#perModel.set(model, { queue: new PQueue({ concurrency: limit }), limit });
    }
  }

  /**
   * Runs `task` once a slot is free for `model` (or any slot when the model has no limit).
   * `onWait` hears why it does not start at once: the model's limit is full, then (or
   * instead) every slot of the run is. The slot is free again when the task ends, or earlier
   * when it calls `release` (its request finished at the API: what follows is local work).
   */
  async run<T>(
    model: string | undefined,
    task: (release: () => void) => Promise<T>,
    onWait: (reason: WaitReason) => void = () => {},
  ): Promise<T> {
    let outcome!: Promise<T>;
    // The queues hold the slot until `held` settles: at the task's end or its release.
    const holdSlot = () =>
      new Promise<void>((release) => {
        outcome = task(release);
        outcome.then(
          () => release(),
          () => release(),
        );
      });
    const throughGlobal = () => {
      if (this.#global.pending >= this.#concurrency)
        onWait({ kind: "concurrency", concurrency: this.#concurrency });
      return this.#global.add(holdSlot);
    };
    const limited = model === undefined ? undefined : this.#perModel.get(model);
    if (!limited) await throughGlobal();
    else {
      if (limited.queue.pending >= limited.limit)
        onWait({ kind: "limit", model: model!, limit: limited.limit });
      await limited.queue.add(throughGlobal);
    }
    return outcome;
  }

  get inFlight(): number {
    return this.#global.pending;
  }

  get waiting(): number {
    let waiting = this.#global.size;
    for (const { queue } of this.#perModel.values()) waiting += queue.size;
    return waiting;
  }
}
