import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, test } from "vitest";
import {
  chainYaml,
  itemsCsv,
  ndjson,
  project,
  recordedRequests,
  submissionCounts,
  until,
  waitForOutput,
} from "./apply-harness.js";

/** Deterministic "random" kill moments: a small linear congruential sequence. */
function moments(seed: number, count: number, low: number, high: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return low + (state % (high - low));
  });
}

describe("resume after a crash", () => {
  test("killed with SIGKILL at several moments, then resumed: everything completes and no recorded request is submitted twice", async () => {
    // item-1's first step is held in progress until the first apply is dead, so some later
    // apply must re-attach to it (however slow the machine); the other kills land at their
    // arbitrary moments, on purpose.
    const p = await project(
      {
        "chain.yaml": chainYaml({ concurrency: 6 }),
        "items.csv": itemsCsv(16, (index) => (index === 1 ? " [emulator:hold=first]" : "")),
      },
      { duration: { min: 100, max: 400 }, capacity: 4 },
    );
    for (const [index, delay] of moments(7, 4, 50, 700).entries()) {
      const child = p.start(["apply", "chain.yaml"]);
      await waitForOutput(child, " apply ");
      if (index === 0)
        await until("item-1's request id recorded", () => recordedRequests(p.dir, "clip/item-1/animate") > 0);
      else await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill("SIGKILL");
      await child;
      if (index === 0) expect(p.api.release("first")).toBe(1);
    }

    let final = await p.run(["apply", "chain.yaml"]);
    // A kill between a POST and the commit of its request id leaves the step `unknown`
    // (maybe billed); only an explicit --resubmit-unknown sends it again.
    if (final.exitCode !== 0) {
      expect(final.stdout).toContain("unknown");
      final = await p.run(["retry", "--resubmit-unknown"]);
    }
    expect(final.exitCode).toBe(0);

    const store = p.store();
    const recorded = new Set<string>();
    const runs = store.listRuns({ limit: 100 });
    let reattached = 0;
    for (const run of runs) {
      for (const attempt of store.getAttempts(run.id)) {
        if (attempt.requestId) recorded.add(attempt.requestId);
        if (attempt.reattachedFromRun) reattached++;
      }
    }
    // The kills did leave requests running, and later applies collected them.
    expect(reattached).toBeGreaterThan(0);
    // Every body that reached the API more than once had all but one of its submissions
    // lost before their ids were recorded: no recorded request was ever sent again.
    for (const group of p.api.submissions().byBody) {
      const recordedIds = group.requestIds.filter((id) => recorded.has(id));
      expect(recordedIds.length).toBeLessThanOrEqual(1);
    }
    // Every one of the 32 steps has a success on record, in this run or an earlier one.
    const latest = store.latestRun()!;
    const states = store.getSteps(latest.id).map((step) => step.state);
    expect(states.every((state) => state === "succeeded" || state === "reused")).toBe(true);
    expect(runs.length).toBeGreaterThanOrEqual(5);
    expect(submissionCounts(p.api).length).toBe(32);
  }, 120_000);

  test("a request that was running when the process died is re-attached and collected, not submitted again", async () => {
    // Held in progress until released: still running when the process dies, however slow it is.
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(1, () => " [emulator:hold]"),
    });
    const child = p.start(["apply", "chain.yaml"]);
    await waitForOutput(child, "clip/item-1/animate in_progress");
    child.kill("SIGKILL");
    await child;
    expect(p.api.submissions().total).toBe(1);
    expect(p.api.release()).toBe(1);

    const resumed = await p.run(["apply", "chain.yaml"]);
    expect(resumed.exitCode).toBe(0);
    expect(resumed.stdout).toMatch(
      /clip\/item-1\/animate: re-attached to request \S+ \(submitted by run \S+\)/,
    );
    expect(resumed.stdout).toMatch(/took over the lock of workflow chain/);
    expect(p.api.submissions().total).toBe(2);
    expect(submissionCounts(p.api)).toEqual([1, 1]);
  });

  test("the next apply records and starts first what the last one left unfinished, and still lists every step in plan order", async () => {
    const p = await project({
      "chain.yaml": chainYaml({ retry: "{ attempts: 1 }" }),
      "items.csv": itemsCsv(12, (index) => (index === 12 ? " [emulator:fail=GPU exploded]" : "")),
    });
    expect((await p.run(["apply", "chain.yaml"])).exitCode).toBe(1);

    const again = await p.run(["apply", "chain.yaml", "--json"]);
    expect(again.exitCode).toBe(1);
    const steps = ndjson(again.stdout).filter((event) => event.event === "step");
    expect(steps.filter((event) => event.state === "reused")).toHaveLength(22);

    const store = p.store();
    const [latest] = store.listRuns({ limit: 1 });
    const inPlanOrder = Array.from({ length: 12 }, (_, index) => [
      `clip/item-${index + 1}/animate`,
      `clip/item-${index + 1}/restyle`,
    ]).flat();
    expect(store.getSteps(latest!.id).map((step) => step.address)).toEqual(inPlanOrder);
    // Recorded (and so started) first: the unfinished item, then the 11 it only takes over.
    const db = new Database(path.join(p.dir, "state", "runflow.db"), { readonly: true });
    const recorded = db
      .prepare<[string], { address: string }>(`SELECT address FROM steps WHERE run_id = ? ORDER BY rowid`)
      .all(latest!.id)
      .map((row) => row.address);
    db.close();
    expect(recorded).toEqual([...inPlanOrder.slice(22), ...inPlanOrder.slice(0, 22)]);
  });
});
