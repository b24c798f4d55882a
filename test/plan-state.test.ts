/**
 * `runflow plan` and `apply --dry-run` say what the next `apply` does (issue 15, item 2): the
 * same decisions from the same state — reused, re-attached, to submit, held as unknown — and
 * they only read it. The built CLI against an emulator on loopback.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { Plan } from "../src/plan/index.js";
import { chainYaml, itemsCsv, ndjson, project, waitForOutput } from "./apply-harness.js";

/**
 * The state database and its log with their sha256: what a read-only command must leave as
 * it was. (The `-shm` file is SQLite's shared index of the log, which every reader uses.)
 */
function stateFiles(dir: string): Record<string, string> {
  const folder = path.join(dir, "state");
  const files: Record<string, string> = {};
  for (const name of readdirSync(folder)) {
    if (name.endsWith("-shm")) continue;
    files[name] = createHash("sha256")
      .update(readFileSync(path.join(folder, name)))
      .digest("hex");
  }
  return files;
}

describe("plan reads the state", () => {
  test("plan and apply --dry-run print the same plan, and the next apply does exactly what it says", async () => {
    const p = await project({
      "chain.yaml": chainYaml({ retry: "{ attempts: 1 }" }),
      // item-3's answer is lost (maybe billed: held), item-4 fails (sent again).
      "items.csv": itemsCsv(4, (i) =>
        i === 3 ? " [emulator:lost-answer]" : i === 4 ? " [emulator:fail=GPU exploded]" : "",
      ),
    });
    expect((await p.run(["apply", "chain.yaml", "--quiet"])).exitCode).toBe(1);
    const submittedBefore = p.api.submissions().total;

    const plan = await p.run(["plan", "chain.yaml"]);
    expect(plan.exitCode).toBe(0);
    const [headline, against] = plan.stdout.split("\n");
    expect(headline).toBe(
      "chain: 8 steps in 4 instances — 1 to submit, 4 reused, 1 held as unknown, 2 deferred, 0 to run",
    );
    expect(against).toBe(`against the emulator at ${p.api.url}`);
    expect(plan.stdout).toMatch(
      /clip\/item-3\/animate: an earlier submission \(run \S+, attempt 1\) may have been/,
    );
    const dryRun = await p.run(["apply", "chain.yaml", "--dry-run"]);
    expect(dryRun.exitCode).toBe(0);
    expect(dryRun.stdout).toBe(plan.stdout);
    expect(p.api.submissions().total).toBe(submittedBefore);

    const planned = JSON.parse((await p.run(["plan", "chain.yaml", "--json"])).stdout) as Plan;
    const applied = await p.run(["apply", "chain.yaml", "--json"]);
    const ended = new Map<string, string>();
    for (const event of ndjson(applied.stdout)) {
      if (event.event === "step") ended.set(String(event.address), String(event.state));
    }
    const expected: Record<string, string> = { reuse: "reused", unknown: "unknown", submit: "failed" };
    for (const step of planned.steps) {
      if (step.decision === "deferred") continue;
      expect(`${step.address} ${ended.get(step.address)}`).toBe(`${step.address} ${expected[step.decision]}`);
    }
    // Only item-4's animate was sent: the held step was not.
    expect(p.api.submissions().total).toBe(submittedBefore + 1);
  });

  test("plan says which steps the next apply re-attaches to", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(1) }, { duration: 60_000 });
    const child = p.start(["apply", "chain.yaml"]);
    await waitForOutput(child, "clip/item-1/animate in_progress");
    child.kill("SIGKILL");
    await child;
    const [requestId] = p.api.submissions().byBody[0]!.requestIds;

    const plan = await p.run(["plan", "chain.yaml"]);
    expect(plan.stdout.split("\n")[0]).toBe(
      "chain: 2 steps in 1 instance — 0 to submit, 0 reused, 1 re-attached, 1 deferred, 0 to run",
    );
    expect(plan.stdout).toMatch(
      new RegExp(
        `re-attaches to request ${requestId} \\(submitted by run \\S+\\): collected, not sent again`,
      ),
    );
  });

  test("plan writes nothing: no state file is created, an existing one is left byte for byte, and a live apply's lock does not stop it", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(2) }, { duration: 60_000 });
    expect((await p.run(["plan", "chain.yaml"])).exitCode).toBe(0);
    expect(existsSync(path.join(p.dir, "state", "runflow.db"))).toBe(false);

    const child = p.start(["apply", "chain.yaml"]);
    await waitForOutput(child, /in_progress/);
    child.kill("SIGKILL");
    await child;
    const before = stateFiles(p.dir);
    const plan = await p.run(["plan", "chain.yaml"]);
    expect(plan.exitCode).toBe(0);
    expect(stateFiles(p.dir)).toEqual(before);

    // An apply holding the lock (waiting on its requests): plan reads beside it.
    const live = p.start(["apply", "chain.yaml"]);
    await waitForOutput(live, /re-attached/);
    const beside = await p.run(["plan", "chain.yaml"]);
    expect(beside.exitCode).toBe(0);
    expect(beside.stdout).toContain("chain: 4 steps in 2 instances");
  });
});
