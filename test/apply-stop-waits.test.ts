/**
 * A stop (SIGINT, `runflow cancel`) ends every wait at once — here the wait a 429's
 * Retry-After asks for before a submission is tried again — and nothing is submitted after
 * it. The emulator answers every POST 429 with `Retry-After: 3600`: without the fix the CLI
 * sat out the wait (capped at 5 minutes) and then submitted.
 */
import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project, type Project } from "./apply-harness.js";

/** Resolves once the emulator has answered a submission with a 429 (the CLI is now waiting). */
async function rateLimitedSubmission(p: Project): Promise<void> {
  while (!p.api.requestLog().some((entry) => entry.endpoint === "submit" && entry.status === 429)) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function rateLimitedForAnHour(p: Project): void {
  p.api.configure({ faults: [{ endpoint: "submit", kind: "429", retryAfter: 3600 }] });
}

describe("a stop ends the wait for a rate-limited submission", () => {
  test("SIGINT while a POST waits out Retry-After: 3600 exits 130 at once and submits nothing", async () => {
    const p = await project({ "chain.yaml": chainYaml({ concurrency: 2 }), "items.csv": itemsCsv(2) });
    rateLimitedForAnHour(p);
    const child = p.start(["apply", "chain.yaml"]);
    await rateLimitedSubmission(p);
    child.kill("SIGINT");
    const interrupted = await child;
    // The harness kills the CLI after 60 s, far below the 5-minute wait it would otherwise sit out.
    expect(interrupted.timedOut).toBe(false);
    expect(interrupted.exitCode).toBe(130);
    expect(p.api.submissions().total).toBe(0);
    const posts = p.api.requestLog().filter((entry) => entry.endpoint === "submit");
    expect(posts.every((entry) => entry.status === 429)).toBe(true);

    // The attempt is closed as never sent: the next apply submits it, not reporting it `unknown`.
    const store = p.store();
    const run = store.latestRun()!;
    expect(run.status).toBe("interrupted");
    const attempts = store.getAttempts(run.id);
    expect(attempts.length).toBeGreaterThan(0);
    for (const attempt of attempts) expect(attempt.state).toBe("cancelled");
    p.api.configure({ faults: [] });
    const again = await p.run(["apply", "chain.yaml"]);
    expect(again.exitCode).toBe(0);
    expect(p.api.submissions().byModel["minimax/Hailuo Video 01 Live"]).toBe(2);
  }, 90_000);

  test("`runflow cancel` of the live run ends the wait as well, and submits nothing", async () => {
    const p = await project({ "chain.yaml": chainYaml({ concurrency: 2 }), "items.csv": itemsCsv(2) });
    rateLimitedForAnHour(p);
    const child = p.start(["apply", "chain.yaml"]);
    await rateLimitedSubmission(p);
    const cancel = await p.run(["cancel"]);
    expect(cancel.exitCode).toBe(0);
    const cancelled = await child;
    expect(cancelled.timedOut).toBe(false);
    expect(p.store().latestRun()!.status).toBe("cancelled");
    expect(p.api.submissions().total).toBe(0);
  }, 60_000);

  test("a refused token (exit 4) ends the wait as well: the rate-limited submission is never sent again", async () => {
    const p = await project(
      { "chain.yaml": chainYaml({ concurrency: 2 }), "items.csv": itemsCsv(2) },
      { duration: 60_000 },
    );
    p.api.configure({ faults: [{ endpoint: "submit", kind: "429", retryAfter: 3600, times: 1 }] });
    const child = p.start(["apply", "chain.yaml"]);
    await rateLimitedSubmission(p);
    // From now on the API refuses the CLI's token: its next call (a poll, or the other submission) stops the run.
    p.api.configure({ token: "another-token" });
    const refused = await child;
    expect(refused.timedOut).toBe(false);
    expect(refused.exitCode).toBe(4);
    expect(p.api.submissions().total).toBeLessThanOrEqual(1);
    const posts = p.api.requestLog().filter((entry) => entry.endpoint === "submit");
    expect(posts.filter((entry) => entry.status === 429)).toHaveLength(1);
    expect(posts.filter((entry) => entry.status === 200)).toHaveLength(p.api.submissions().total);
  }, 60_000);

  test("SIGINT while a run-time media probe waits out a media host's Retry-After: 3600 exits 130 at once", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(1) });
    // The restyle's video is the animate's output, probed only at run time; its host rate-limits.
    p.api.configure({ faults: [{ endpoint: "files", kind: "429", retryAfter: 3600 }] });
    const child = p.start(["apply", "chain.yaml", "--no-download"]);
    while (!p.api.requestLog().some((entry) => entry.endpoint === "files" && entry.status === 429)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    child.kill("SIGINT");
    const interrupted = await child;
    expect(interrupted.timedOut).toBe(false);
    expect(interrupted.exitCode).toBe(130);
    expect(p.api.submissions().byModel["runwayml/runway-aleph/video-to-video"]).toBeUndefined();
    // Stopped, not failed: the step is left for the next apply.
    const run = p.store().latestRun()!;
    const restyle = p
      .store()
      .getSteps(run.id)
      .find((step) => step.stepId === "restyle")!;
    expect(restyle.state).not.toBe("failed");
  }, 60_000);
});
