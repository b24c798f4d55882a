/**
 * The in-process adapter of the Dispatcher port (dispatcher.ts): everything runs in this
 * process. Ready steps wait in ReadyLanes (one lane per model, one for local programs, one for
 * takeovers; lanes take turns), requests in flight are capped by RequestScheduler
 * (`concurrency` and `limits`), local processes by a p-queue of the machine's CPUs.
 */
import PQueue from "p-queue";
import {
  type DispatchedRun,
  type Dispatcher,
  type ReadyStep,
  REUSE_LANE,
  RUN_STEP_LANE,
} from "./dispatcher.js";
import { ReadyLanes } from "./ready-lanes.js";
import { RequestScheduler } from "./scheduler.js";

/** Takeovers at once: they read files and write rows, no request slot. */
const REUSE_LANE_CAPACITY = 16;

export class InProcessDispatcher implements Dispatcher {
  readonly requests: RequestScheduler;
  readonly processes: PQueue;
  readonly #lanes: ReadyLanes;

  constructor(run: Omit<DispatchedRun, "runId">) {
    const { concurrency, limits, processConcurrency } = run;
    this.requests = new RequestScheduler(concurrency, limits);
    this.processes = new PQueue({ concurrency: processConcurrency });
    // Twice the slots: steps backing off or waiting for a slot must not leave request slots
    // idle. A step downloading has left its lane already (RunExecution's `leaveLane`).
    this.#lanes = new ReadyLanes(concurrency * 2, (lane) => {
      if (lane === RUN_STEP_LANE) return { capacity: processConcurrency * 2, remote: false };
      if (lane === REUSE_LANE) return { capacity: REUSE_LANE_CAPACITY, remote: false };
      return { capacity: (limits[lane] ?? concurrency) * 2, remote: true };
    });
  }

  enqueue(lane: string, address: string): void {
    this.#lanes.add(lane, address);
  }

  dispatch(start: (step: ReadyStep) => void): void {
    for (let next = this.#lanes.take(); next !== undefined; next = this.#lanes.take()) start(next);
  }

  finished(step: ReadyStep): void {
    this.#lanes.finished(step.lane);
  }

  get waiting(): number {
    return this.#lanes.waiting;
  }

  withdraw(): string[] {
    return this.#lanes.drain();
  }

  close(): Promise<void> {
    return this.processes.onIdle();
  }
}

export const inProcessDispatcher = (run: DispatchedRun): Dispatcher => new InProcessDispatcher(run);
