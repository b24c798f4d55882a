/**
 * A request the API calls `succeeded` but whose result carries nothing usable — no
 * `output`, `{}`, or a bare string — is a failed attempt: retried under retry.attempts,
 * then the step fails with an error that says what came, and nothing downstream runs on it.
 */
import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project } from "./apply-harness.js";

const BROKEN = ["missing", "empty", "text"] as const;

describe("a succeeded result with nothing in it", () => {
  test("no output, {} or a string: the step fails after its attempts, saying why; its dependents are blocked", async () => {
    const p = await project({
      "chain.yaml": chainYaml({ retry: "{ attempts: 2, backoff: 10ms, max_backoff: 20ms }" }),
      "items.csv": itemsCsv(4, (i) => (i <= 3 ? ` [emulator:output=${BROKEN[i - 1]}]` : "")),
    });
    const result = await p.run(["apply", "chain.yaml"], { timeoutMs: 60_000 });
    expect(result.exitCode).toBe(1);

    const store = p.store();
    const run = store.latestRun()!;
    const error = (item: number) =>
      store.getSteps(run.id).find((step) => step.address === `clip/item-${item}/animate`)!;
    const expects = "(minimax/Hailuo Video 01 Live gives image, video, images, videos)";
    expect(error(1)).toMatchObject({ state: "failed" });
    expect(error(1).error).toContain(`succeeded but its result has no output ${expects} (attempt 2 of 2)`);
    expect(error(2).error).toContain(`succeeded but its output is empty ${expects}`);
    expect(error(3).error).toContain(
      `succeeded but its output is a string ("done"), not an object of named outputs ${expects}`,
    );
    expect(error(4)).toMatchObject({ state: "succeeded" });
    for (const item of [1, 2, 3]) {
      const restyle = store.getSteps(run.id).find((step) => step.address === `clip/item-${item}/restyle`)!;
      expect(restyle.state).toBe("blocked");
      // Each attempt was a failed remote attempt, recorded as such.
      const attempts = store.getAttempts(run.id, `clip/item-${item}/animate`);
      expect(attempts.map((attempt) => attempt.state)).toEqual(["failed", "failed"]);
    }
    expect(p.api.submissions().byModel["minimax/Hailuo Video 01 Live"]).toBe(7);
  }, 90_000);
});
