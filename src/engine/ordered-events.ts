/**
 * Announces a run's events in the order they were made, each only once the write it tells
 * of is durable (SPEC §4, "written before announced"). An event made while an earlier one
 * still waits for its write waits behind it, even when it tells of nothing written (a step
 * waiting for a slot, a notice): views hear everything in the order it happened. With no
 * write pending, an event is announced at once.
 */
import type { RunEvent, RunEventSink } from "./events.js";

export class OrderedEvents implements RunEventSink {
  readonly #sink: RunEventSink;
  /** Settles once every event made so far is announced (or dropped with its failed write). */
  #tail: Promise<void> = Promise.resolve();
  /** Events made and not yet announced. */
  #pending = 0;

  constructor(sink: RunEventSink) {
    this.#sink = sink;
  }

  /** Settles once every event made so far is announced (or dropped with its failed write). */
  settled(): Promise<void> {
    return this.#tail;
  }

  /** Announces `event` after the events made before it. */
  emit(event: RunEvent): void {
    if (this.#pending === 0) this.#sink.emit(event);
    else void this.emitAfter(Promise.resolve(), event);
  }

  /**
   * Announces `event` once `written` resolved and the events made before it are announced.
   * Rejects, announcing nothing, when the write failed.
   */
  emitAfter(written: Promise<void>, event: RunEvent): Promise<void> {
    this.#pending++;
    const previous = this.#tail;
    const announced = Promise.all([written, previous]).then(
      () => {
        this.#pending--;
        this.#sink.emit(event);
      },
      (error: unknown) => {
        this.#pending--;
        throw error;
      },
    );
    this.#tail = announced.catch(() => undefined);
    return announced;
  }
}
