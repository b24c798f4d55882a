/**
 * RequestScheduler (src/engine/scheduler.ts): requests in flight capped by `concurrency` and
 * by `limits[model]` (SPEC §4). Tasks are deferreds the test settles one by one, so what runs
 * at each moment is decided by the test, not by durations: the caps hold at every step, a
 * model at its limit leaves the run's slots to other models, and each wait says why.
 */
import { describe, expect, test } from "vitest";
import type { WaitReason } from "../src/engine/events.js";
import { RequestScheduler } from "../src/engine/scheduler.js";
import { deferred, settle, type Deferred } from "./helpers/deferred.js";

interface Task {
  /** Resolved by the test: the task ends. */
  gate: Deferred<void>;
  waits: WaitReason[];
  result: Promise<string>;
}

/** A scheduler whose tasks wait for the test; it counts what runs at once, overall and per model. */
function harness(concurrency: number, limits: Record<string, number> = {}) {
  const scheduler = new RequestScheduler(concurrency, limits);
  const tasks = new Map<string, Task>();
  const order: string[] = [];
  let running = 0;
  let peak = 0;
  const runningByModel = new Map<string, number>();
  const peakByModel = new Map<string, number>();

  const submit = (name: string, model?: string, fails = false): Task => {
    const gate = deferred();
    const waits: WaitReason[] = [];
    const result = scheduler.run(
      model,
      async () => {
        order.push(name);
        running++;
        peak = Math.max(peak, running);
        const key = model ?? "";
        runningByModel.set(key, (runningByModel.get(key) ?? 0) + 1);
        peakByModel.set(key, Math.max(peakByModel.get(key) ?? 0, runningByModel.get(key)!));
        try {
          await gate.promise;
          if (fails) throw new Error(`${name} failed`);
          return name;
        } finally {
          running--;
          runningByModel.set(key, runningByModel.get(key)! - 1);
        }
      },
      (reason) => waits.push(reason),
    );
    // A task the test never finishes must not fail the run with an unhandled rejection.
    result.catch(() => undefined);
    const task = { gate, waits, result };
    tasks.set(name, task);
    return task;
  };

  /** Ends the task and waits until whatever its slot lets start has started. */
  const finish = async (name: string) => {
    tasks.get(name)!.gate.resolve();
    await tasks.get(name)!.result.catch(() => undefined);
    await settle();
  };

  return {
    scheduler,
    submit,
    finish,
    order,
    peak: () => peak,
    peakOf: (model: string) => peakByModel.get(model) ?? 0,
    running: () => running,
  };
}

describe("RequestScheduler", () => {
  test("never more in flight than `concurrency`; a finished request lets the next one start, in order", async () => {
    const h = harness(2);
    const tasks = ["t1", "t2", "t3", "t4", "t5"].map((name) => h.submit(name));
    await settle();
    expect(h.order).toEqual(["t1", "t2"]);
    expect(h.scheduler.inFlight).toBe(2);
    expect(h.scheduler.waiting).toBe(3);

    await h.finish("t1");
    expect(h.order).toEqual(["t1", "t2", "t3"]);
    await h.finish("t3");
    await h.finish("t2");
    expect(h.order).toEqual(["t1", "t2", "t3", "t4", "t5"]);
    expect(h.scheduler.waiting).toBe(0);
    await h.finish("t4");
    await h.finish("t5");

    expect(h.peak()).toBe(2);
    expect(h.scheduler.inFlight).toBe(0);
    expect(await Promise.all(tasks.map((task) => task.result))).toEqual(["t1", "t2", "t3", "t4", "t5"]);
  });

  test("a request that fails frees its slot like one that succeeds", async () => {
    const h = harness(1);
    const failing = h.submit("bad", undefined, true);
    h.submit("next");
    await settle();
    await h.finish("bad");
    await expect(failing.result).rejects.toThrow("bad failed");
    expect(h.order).toEqual(["bad", "next"]);
    expect(h.scheduler.inFlight).toBe(1);
  });

  test("a model's limit caps its requests in flight, while other models use the rest of the run's slots", async () => {
    const h = harness(4, { aleph: 1 });
    for (const name of ["a1", "a2", "a3"]) h.submit(name, "aleph");
    for (const name of ["h1", "h2", "h3", "h4"]) h.submit(name, "hailuo");
    await settle();
    expect([...h.order].sort()).toEqual(["a1", "h1", "h2", "h3"]);
    expect(h.scheduler.inFlight).toBe(4);
    // a2 and a3 wait for aleph's slot, h4 for one of the run's.
    expect(h.scheduler.waiting).toBe(3);

    await h.finish("a1");
    // a2 got aleph's slot, but a1's slot of the run went to h4, queued for it first.
    expect(h.order.slice(4)).toEqual(["h4"]);
    await h.finish("h1");
    expect(h.order.slice(5)).toEqual(["a2"]);
    for (const name of ["h2", "h3", "h4", "a2"]) await h.finish(name);
    expect(h.order.slice(6)).toEqual(["a3"]);
    await h.finish("a3");

    expect(h.peakOf("aleph")).toBe(1);
    expect(h.peak()).toBe(4);
    expect(h.order).toHaveLength(7);
  });

  test("requests of a model at its limit hold none of the run's slots: another model's request starts at once", async () => {
    const h = harness(2, { aleph: 1 });
    for (const name of ["a1", "a2", "a3"]) h.submit(name, "aleph");
    h.submit("h1", "hailuo");
    await settle();
    expect(h.order).toEqual(["a1", "h1"]);
    expect(h.scheduler.inFlight).toBe(2);
  });

  test("each wait says why: the model's limit, the run's concurrency, or both in turn", async () => {
    const h = harness(1, { aleph: 1 });
    const a1 = h.submit("a1", "aleph");
    const h1 = h.submit("h1", "hailuo");
    const a2 = h.submit("a2", "aleph");
    await settle();
    // a1 started at once; h1 found every slot of the run in use; a2 found aleph's limit full.
    expect(a1.waits).toEqual([]);
    expect(h1.waits).toEqual([{ kind: "concurrency", concurrency: 1 }]);
    expect(a2.waits).toEqual([{ kind: "limit", model: "aleph", limit: 1 }]);

    // a1 ends: h1 takes the run's slot; a2 now has aleph's slot and waits for the run's.
    await h.finish("a1");
    expect(h.order).toEqual(["a1", "h1"]);
    expect(a2.waits).toEqual([
      { kind: "limit", model: "aleph", limit: 1 },
      { kind: "concurrency", concurrency: 1 },
    ]);
    await h.finish("h1");
    expect(h.order).toEqual(["a1", "h1", "a2"]);
    await h.finish("a2");
    expect(h.peak()).toBe(1);
  });

  test("a request that finds a free slot hears no wait, and a model without a limit only the run's", async () => {
    const h = harness(3, { aleph: 2 });
    const tasks = [h.submit("a1", "aleph"), h.submit("a2", "aleph"), h.submit("x"), h.submit("h1", "hailuo")];
    await settle();
    expect(tasks.slice(0, 3).map((task) => task.waits)).toEqual([[], [], []]);
    expect(tasks[3]!.waits).toEqual([{ kind: "concurrency", concurrency: 3 }]);
  });

  test("under a random order of endings the caps hold at every moment", async () => {
    // A fixed pseudo-random sequence: the same order every run.
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const h = harness(3, { aleph: 2, hailuo: 1 });
    const models = ["aleph", "hailuo", undefined, "other"];
    const names: string[] = [];
    for (let i = 0; i < 40; i++) {
      const name = `t${i}`;
      names.push(name);
      h.submit(name, models[i % models.length]);
    }
    await settle();
    const finished = new Set<string>();
    while (finished.size < names.length) {
      const candidates = h.order.filter((name) => !finished.has(name));
      expect(candidates.length, "something must be running while tasks remain").toBeGreaterThan(0);
      const name = candidates[Math.floor(random() * candidates.length)]!;
      finished.add(name);
      await h.finish(name);
      expect(h.running()).toBeLessThanOrEqual(3);
    }
    expect(h.peak()).toBe(3);
    expect(h.peakOf("aleph")).toBe(2);
    expect(h.peakOf("hailuo")).toBe(1);
    expect(h.scheduler.inFlight).toBe(0);
    expect(h.scheduler.waiting).toBe(0);
  });
});
