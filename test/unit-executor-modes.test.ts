/**
 * RunExecution (src/engine/run-execution.ts): the run's modes — feeding, draining, stopping,
 * done — with the in-process dispatcher (src/engine/in-process-dispatcher.ts) and step
 * executions the test settles one by one (deferreds), so what has started at each moment is
 * decided by the test, never by a clock. Then the in-process dispatcher itself: lane
 * capacities, request caps and the reasons a request waits, and taking steps back on a stop.
 */
import { describe, expect, test } from "vitest";
import type { StepEnding } from "../src/engine/context.js";
import { RUN_STEP_LANE, type ReadyStep } from "../src/engine/dispatcher.js";
import type { RunEvent, WaitReason } from "../src/engine/events.js";
import { InProcessDispatcher } from "../src/engine/in-process-dispatcher.js";
import { RunControl, type StopReason } from "../src/engine/run-control.js";
import { ExecutionModeError, RunExecution } from "../src/engine/run-execution.js";
import { StepState } from "../src/engine/states.js";
import { StepTracker } from "../src/engine/transitions.js";
import type { PlannedStep } from "../src/plan/types.js";
import type { StateStore } from "../src/store/port.js";
import { deferred, settle, type Deferred } from "./helpers/deferred.js";

/** Only what RunExecution reads of a planned step. */
function step(address: string, dependsOn: string[] = [], model = "m"): PlannedStep {
  return { address, kind: "model", model, dependsOn, decision: "submit" } as unknown as PlannedStep;
}

/** A run whose step executions wait for the test: `end(address, ending)` settles one. */
function harness(
  options: { concurrency?: number; limits?: Record<string, number>; stoppedBefore?: StopReason } = {},
) {
  const writes: { address: string; state: string }[] = [];
  const store = {
    steps: {
      update: (_runId: string, address: string, patch: { state?: string }) => {
        if (patch.state !== undefined) writes.push({ address, state: patch.state });
        return Promise.resolve();
      },
    },
  } as unknown as StateStore;
  const events: RunEvent[] = [];
  const tracker = new StepTracker("run-1", [], {
    store,
    events: { emit: (event) => events.push(event) },
    clock: { now: () => 0, sleep: () => Promise.resolve() },
  });
  const dispatcher = new InProcessDispatcher({
    concurrency: options.concurrency ?? 4,
    limits: options.limits ?? {},
    processConcurrency: 1,
  });
  const control = new RunControl();
  if (options.stoppedBefore) control.stop(options.stoppedBefore);
  const running = new Map<string, Deferred<StepEnding>>();
  const started: string[] = [];
  const execution = new RunExecution({
    tracker,
    dispatcher,
    control,
    execute: (planned) => {
      started.push(planned.address);
      const ending = deferred<StepEnding>();
      running.set(planned.address, ending);
      return ending.promise;
    },
  });
  const end = async (address: string, ending: StepEnding | Error) => {
    const found = running.get(address);
    if (!found) throw new Error(`${address} is not running`);
    running.delete(address);
    if (ending instanceof Error) found.reject(ending);
    else found.resolve(ending);
    await settle();
  };
  return { execution, tracker, dispatcher, control, started, end, writes };
}

describe("RunExecution modes", () => {
  test("feeding → draining → done: a slice's ready steps start, dependents start when their dependency succeeds, done once all ended", async () => {
    const { execution, tracker, started, end } = harness();
    expect(execution.mode).toBe("feeding");
    await execution.add([step("a"), step("b", ["a"]), step("c")]);
    expect(started).toEqual(["a", "c"]);

    execution.endFeed();
    expect(execution.mode).toBe("draining");

    await end("a", "succeeded");
    expect(started).toEqual(["a", "c", "b"]);
    await end("c", "succeeded");
    expect(execution.mode).toBe("draining");

    let finished = false;
    void execution.finished.then(() => (finished = true));
    await end("b", "succeeded");
    expect(execution.mode).toBe("done");
    expect(finished).toBe(true);
    expect(execution.active).toBe(0);
    // RunExecution changes no state itself when every step ended on its own.
    expect(tracker.counts()).toEqual({ pending: 3 });
  });

  test("a slice arriving while feeding starts its steps with the earlier ones still running", async () => {
    const { execution, started, end } = harness();
    await execution.add([step("a")]);
    await execution.add([step("b")]);
    expect(started).toEqual(["a", "b"]);
    await end("a", "succeeded");
    expect(execution.mode).toBe("feeding");
    await end("b", "succeeded");
    // Nothing runs, but the feed is open: not done.
    expect(execution.mode).toBe("feeding");
    execution.endFeed();
    expect(execution.mode).toBe("done");
  });

  test("a stop while feeding: waiting steps are cancelled, a later slice is recorded and not started, done once the running ones end", async () => {
    // concurrency 1: two steps of a model start (twice the slots), the third waits.
    const { execution, tracker, dispatcher, control, started, end } = harness({ concurrency: 1 });
    await execution.add([step("a1"), step("a2"), step("a3"), step("after", ["a3"])]);
    expect(started).toEqual(["a1", "a2"]);
    expect(dispatcher.waiting).toBe(1);

    control.stop("cancelled");
    expect(execution.mode).toBe("stopping");
    expect(dispatcher.waiting).toBe(0);
    await settle();
    expect(tracker.state("a3")).toBe(StepState.cancelled);
    expect(tracker.state("after")).toBe(StepState.blocked);

    await execution.add([step("late"), step("late-child", ["late"])]);
    expect(started).toEqual(["a1", "a2"]);
    expect(tracker.state("late")).toBe(StepState.cancelled);
    expect(tracker.state("late-child")).toBe(StepState.blocked);

    execution.endFeed();
    expect(execution.mode).toBe("stopping");
    await end("a1", "succeeded");
    await end("a2", "left");
    expect(execution.mode).toBe("done");
    await execution.written();
    expect(started).toEqual(["a1", "a2"]);
  });

  test("a stop while draining: a step released by a success is cancelled, not started", async () => {
    const { execution, tracker, control, started, end } = harness();
    await execution.add([step("a"), step("b", ["a"]), step("c", ["b"])]);
    execution.endFeed();
    control.stop("no_balance");
    expect(execution.mode).toBe("stopping");
    await end("a", "succeeded");
    expect(started).toEqual(["a"]);
    expect(tracker.state("b")).toBe(StepState.cancelled);
    expect(tracker.state("c")).toBe(StepState.blocked);
    expect(execution.mode).toBe("done");
  });

  test("an interrupt leaves the steps that never started pending, for the next apply", async () => {
    const { execution, tracker, dispatcher, control, started, end } = harness({ concurrency: 1 });
    await execution.add([step("a1"), step("a2"), step("a3"), step("b", ["a1"])]);
    execution.endFeed();
    control.stop("interrupted");
    expect(dispatcher.waiting).toBe(0);
    await end("a1", "succeeded");
    await end("a2", "left");
    expect(execution.mode).toBe("done");
    expect(started).toEqual(["a1", "a2"]);
    expect(tracker.state("a3")).toBe(StepState.pending);
    expect(tracker.state("b")).toBe(StepState.pending);
  });

  test("a run stopped before it starts takes its slices in and starts nothing", async () => {
    // The signal came while the run was being planned.
    const { execution, tracker, started } = harness({ stoppedBefore: "cancelled" });
    expect(execution.mode).toBe("stopping");
    await execution.add([step("a")]);
    execution.endFeed();
    expect(started).toEqual([]);
    expect(tracker.state("a")).toBe(StepState.cancelled);
    expect(execution.mode).toBe("done");
  });

  test("illegal transitions throw: a slice after the feed closed, closing the feed twice", async () => {
    const { execution } = harness();
    execution.endFeed();
    expect(execution.mode).toBe("done");
    expect(() => execution.endFeed()).toThrow(ExecutionModeError);
    await expect(execution.add([step("a")])).rejects.toThrow(/after the feed was closed/);
  });

  test("a crash of a step (internal error) fails it, blocks its dependents and is reported", async () => {
    const { execution, tracker, started, end } = harness();
    await execution.add([step("a"), step("b", ["a"]), step("c", ["b"]), step("d")]);
    execution.endFeed();
    await end("a", new Error("database is locked"));
    expect(execution.internalErrors).toEqual([{ address: "a", error: new Error("database is locked") }]);
    expect(tracker.state("a")).toBe(StepState.failed);
    expect(tracker.state("b")).toBe(StepState.blocked);
    expect(tracker.state("c")).toBe(StepState.blocked);
    await end("d", "succeeded");
    expect(execution.mode).toBe("done");
    expect(started).toEqual(["a", "d"]);
  });

  test("a slice source that throws stops the run as interrupted; its error comes out once the run is done", async () => {
    const { execution, control, started, end } = harness();
    const gate = deferred();
    async function* slices() {
      yield [step("a")];
      await gate.promise;
      throw new Error("planning failed");
    }
    const ran = execution.run(slices()).then(
      () => undefined,
      (error: unknown) => error,
    );
    await settle();
    expect(started).toEqual(["a"]);
    gate.resolve();
    await settle();
    expect(control.reason).toBe("interrupted");
    expect(execution.mode).toBe("stopping");
    await end("a", "left");
    expect(await ran).toEqual(new Error("planning failed"));
    expect(execution.mode).toBe("done");
  });
});

describe("InProcessDispatcher", () => {
  const startAll = (dispatcher: InProcessDispatcher) => {
    const started: ReadyStep[] = [];
    dispatcher.dispatch((ready) => started.push(ready));
    return started;
  };

  test("a model's lane holds twice its limit (or the run's concurrency) started at once; a finished step lets the next start", () => {
    const dispatcher = new InProcessDispatcher({
      concurrency: 3,
      limits: { slow: 1 },
      processConcurrency: 1,
    });
    for (const address of ["s1", "s2", "s3"]) dispatcher.enqueue("slow", address);
    for (const address of ["f1", "f2", "f3"]) dispatcher.enqueue("fast", address);
    const started = startAll(dispatcher);
    expect(started.map((s) => s.address).sort()).toEqual(["f1", "f2", "f3", "s1", "s2"]);
    expect(dispatcher.waiting).toBe(1);
    dispatcher.finished(started.find((s) => s.address === "s1")!);
    expect(startAll(dispatcher)).toEqual([{ lane: "slow", address: "s3" }]);
  });

  test("local programs do not count against the window of API steps", () => {
    const dispatcher = new InProcessDispatcher({ concurrency: 1, limits: {}, processConcurrency: 1 });
    for (const address of ["m1", "m2", "m3"]) dispatcher.enqueue("m", address);
    for (const address of ["r1", "r2", "r3"]) dispatcher.enqueue(RUN_STEP_LANE, address);
    expect(
      startAll(dispatcher)
        .map((s) => s.address)
        .sort(),
    ).toEqual(["m1", "m2", "r1", "r2"]);
  });

  test("withdraw takes back every step not started, and nothing starts after", () => {
    const dispatcher = new InProcessDispatcher({ concurrency: 1, limits: {}, processConcurrency: 1 });
    for (const address of ["a", "b", "c", "d"]) dispatcher.enqueue("m", address);
    expect(startAll(dispatcher)).toHaveLength(2);
    expect(dispatcher.withdraw()).toEqual(["c", "d"]);
    expect(dispatcher.waiting).toBe(0);
    expect(startAll(dispatcher)).toEqual([]);
  });

  test("close resolves once no local process runs", async () => {
    const dispatcher = new InProcessDispatcher({ concurrency: 1, limits: {}, processConcurrency: 1 });
    const gate = deferred();
    void dispatcher.processes.add(() => gate.promise);
    let closed = false;
    void dispatcher.close().then(() => (closed = true));
    await settle();
    expect(closed).toBe(false);
    gate.resolve();
    await settle();
    expect(closed).toBe(true);
  });

  test("request slots hold `limits` and `concurrency`, and a waiting request says which one it waits for", async () => {
    const dispatcher = new InProcessDispatcher({
      concurrency: 2,
      limits: { slow: 1 },
      processConcurrency: 1,
    });
    const waits = new Map<string, WaitReason[]>();
    const gates = new Map<string, Deferred<void>>();
    const inFlight: string[] = [];
    const request = (name: string, model: string) => {
      const gate = deferred();
      gates.set(name, gate);
      waits.set(name, []);
      return dispatcher.requests.run(
        model,
        async () => {
          inFlight.push(name);
          await gate.promise;
          inFlight.splice(inFlight.indexOf(name), 1);
        },
        (reason) => waits.get(name)!.push(reason),
      );
    };
    const all = [request("s1", "slow"), request("s2", "slow"), request("f1", "fast"), request("f2", "fast")];
    await settle();
    expect(inFlight).toEqual(["s1", "f1"]);
    expect(waits.get("s2")).toEqual([{ kind: "limit", model: "slow", limit: 1 }]);
    expect(waits.get("f2")).toEqual([{ kind: "concurrency", concurrency: 2 }]);
    gates.get("s1")!.resolve();
    await settle();
    // s2 took its model slot, then waited for one of the run's, which f2 had asked for first.
    expect(inFlight).toEqual(["f1", "f2"]);
    for (const gate of gates.values()) gate.resolve();
    await Promise.all(all);
    expect(inFlight).toEqual([]);
  });
});
