import { setImmediate as setImmediatePromise } from "node:timers/promises";
import type { EngineApi } from "./deps.js";
import type { RunEventSink } from "./events.js";
import type { RunControl } from "./run-control.js";
import { isTerminal } from "./states.js";

/**
 * How long the rest of the plan waits at most for the first slice's first request: a first
 * slice may send nothing soon (its steps reused, `run:` steps, held by the budget) and
 * end none either; then the plan goes on as before, this much later, once.
 */
const MAX_WAIT_MS = 250;

/**
 * When a run plans the rest of its steps (issue 14): the first slice (the concurrency window)
 * is planned, recorded and handed over first, the rest once the first request of the run is
 * on its way. Planning and recording 40 steps held the event loop 3–8 ms in front of the first
 * POST; the steps beyond the window could not start before a request slot frees anyway.
 *
 * The gate opens at the first submission (its request is created in the same turn: after two
 * more turns it is written, the loop having polled), or when a step ends, or the run stops,
 * or after MAX_WAIT_MS. It only decides when planning goes on, never what is submitted:
 * every step is still recorded before it is handed to the executor.
 */
export class FirstRequestGate {
  readonly #opened: Promise<void>;
  #open: () => void = () => undefined;
  #isOpen = false;

  constructor(control: RunControl) {
    this.#opened = new Promise<void>((resolve) => (this.#open = resolve));
    control.onStop(() => this.open());
  }

  open(): void {
    if (this.#isOpen) return;
    this.#isOpen = true;
    this.#open();
  }

  /** The API, its first submission opening the gate. */
  watchApi(api: EngineApi): EngineApi {
    const watched: EngineApi = {
      submit: (...args) => {
        const answer = api.submit(...args);
        this.open();
        return answer;
      },
      waitForResult: (...args) => api.waitForResult(...args),
      cancel: (...args) => api.cancel(...args),
    };
    if (api.price) {
      const price = api.price.bind(api);
      watched.price = (...args) => price(...args);
    }
    return watched;
  }

  /** The events, a step's end opening the gate. */
  watchEvents(events: RunEventSink): RunEventSink {
    return {
      emit: (event) => {
        if (event.event === "step" && isTerminal(event.state)) this.open();
        events.emit(event);
      },
    };
  }

  /** Resolves once the gate is open (or MAX_WAIT_MS passed), two turns of the loop later. */
  async passed(): Promise<void> {
    if (!this.#isOpen) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#opened,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, MAX_WAIT_MS))),
      ]);
      clearTimeout(timer);
    }
    await setImmediatePromise();
    await setImmediatePromise();
  }
}
