/**
 * apply's way to its first submission (issue 14): the prices are asked of the API while the
 * preflight's media probes wait on the media host, not after the lock and the plan; the
 * preflight's verdict still comes first. Ordered with the emulator's `hold` fault on the
 * probe (a ranged media GET, answered only at the release), never with durations.
 */
import Database from "better-sqlite3";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { itemsCsv, lockHolder, project, until } from "./apply-harness.js";

const FLOW = `version: 1
name: early
jobs:
  clip:
    for_each: items.csv
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "{{API}}/media/image.png?w=640&h=480"
`;

/** The runs the project's database holds (none when it has no database or no tables yet). */
function recordedRuns(dir: string): number {
  try {
    const db = new Database(path.join(dir, "state", "runflow.db"), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM runs").get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

describe("apply's way to its first submission", () => {
  test("the price is asked while the preflight's probe waits; nothing is submitted or recorded before its answer", async () => {
    const flow = await project({ "flow.yaml": FLOW, "items.csv": itemsCsv(3) });
    flow.api.configure({ faults: [{ endpoint: "media", kind: "hold", ranged: true, times: 1 }] });
    const run = flow.run(["apply", "flow.yaml", "--quiet"]);
    await until("the preflight's probe is held", () => flow.api.state().heldCalls === 1);
    await until("the price is asked", () => (flow.api.state().calls.byEndpoint.models ?? 0) === 1);
    // Still held: nothing submitted, no run recorded, the lock not taken.
    expect(flow.api.state().heldCalls).toBe(1);
    expect(flow.api.submissions().total).toBe(0);
    expect(recordedRuns(flow.dir)).toBe(0);
    expect(lockHolder(flow.dir, "early")).toBeUndefined();
    flow.api.release();
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(flow.api.submissions().total).toBe(3);
    // Asked once: the run used the answer it had asked for early.
    expect(flow.api.state().calls.byEndpoint.models).toBe(1);
  }, 60_000);

  test("a medium the preflight refuses still exits 2, with nothing submitted and no run recorded", async () => {
    const flow = await project({
      "flow.yaml": FLOW.replace("w=640&h=480", "w=200&h=200"),
      "items.csv": itemsCsv(3),
    });
    const result = await flow.run(["apply", "flow.yaml", "--quiet"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("must both exceed 300 pixels");
    expect(flow.api.submissions().total).toBe(0);
    expect(recordedRuns(flow.dir)).toBe(0);
    expect(lockHolder(flow.dir, "early")).toBeUndefined();
  }, 60_000);
});
