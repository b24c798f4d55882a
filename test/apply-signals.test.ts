import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project, waitForOutput } from "./apply-harness.js";

async function phaseOf(apiUrl: string, requestId: string): Promise<string> {
  const answer = (await (await fetch(`${apiUrl}/__emulator/requests/${requestId}`)).json()) as {
    phase: string;
  };
  return answer.phase;
}

describe("signals", () => {
  test("SIGINT exits 130 with queued requests cancelled at the API; the next apply completes", async () => {
    const p = await project(
      { "chain.yaml": chainYaml({ concurrency: 8 }), "items.csv": itemsCsv(8) },
      { duration: 500, capacity: 2 },
    );
    const child = p.start(["apply", "chain.yaml"]);
    await waitForOutput(child, /in_queue #\d/);
    child.kill("SIGINT");
    const interrupted = await child;
    expect(interrupted.exitCode).toBe(130);
    expect(interrupted.all).toContain("SIGINT received: stopping (a second SIGINT exits at once)");
    // What stopping means is said once, by the engine's notice, not again on stderr.
    expect(interrupted.all.match(/no new submissions/g)).toHaveLength(1);
    expect(interrupted.all).toMatch(
      /was interrupted in [\s\S]*state is saved; to resume: runflow apply chain\.yaml/,
    );

    const state = p.api.state();
    expect(state.requests.cancelled).toBeGreaterThan(0);
    expect(state.requests.in_queue).toBe(0);
    const store = p.store();
    const run = store.latestRun()!;
    expect(run.status).toBe("interrupted");
    expect(run.exitCode).toBe(130);
    const cancelled = store.getSteps(run.id, { states: ["cancelled"] });
    expect(cancelled.length).toBe(state.requests.cancelled);
    for (const step of cancelled) expect(await phaseOf(p.api.url, step.requestId!)).toBe("cancelled");

    p.api.configure({ duration: 50, capacity: null });
    const again = await p.run(["apply", "chain.yaml"], { timeoutMs: 30_000 });
    expect(again.exitCode).toBe(0);
    // Apart from the requests cancelled while queued, every body was accepted once.
    for (const group of p.api.submissions().byBody) {
      const phases = await Promise.all(group.requestIds.map((id) => phaseOf(p.api.url, id)));
      expect(phases.filter((phase) => phase !== "cancelled")).toHaveLength(1);
    }
  });

  test("SIGINT just after the submissions: the requests are recorded as remote, not submitting, and the next apply re-attaches to them", async () => {
    const p = await project(
      { "chain.yaml": chainYaml({ concurrency: 4 }), "items.csv": itemsCsv(4) },
      { duration: 3_000 },
    );
    const child = p.start(["apply", "chain.yaml"]);
    // Every request created, well before the first status poll (1 s after submission).
    while (p.api.submissions().total < 4) await new Promise((resolve) => setTimeout(resolve, 10));
    // Time for the answers to be recorded, not for a poll.
    await new Promise((resolve) => setTimeout(resolve, 150));
    child.kill("SIGINT");
    expect((await child).exitCode).toBe(130);

    const store = p.store();
    const run = store.latestRun()!;
    const animates = store.getSteps(run.id).filter((step) => step.stepId === "animate");
    expect(animates).toHaveLength(4);
    for (const step of animates) {
      expect(step.requestId).toEqual(expect.any(String));
      expect(["in_queue", "in_progress"]).toContain(step.state);
    }

    const again = await p.run(["apply", "chain.yaml"], { timeoutMs: 30_000 });
    expect(again.exitCode).toBe(0);
    expect(again.stdout.match(/re-attached to request/g)).toHaveLength(4);
    expect(p.api.submissions().byModel["minimax/Hailuo Video 01 Live"]).toBe(4);
  });

  test("a second SIGINT exits at once, even while the first is still cancelling", async () => {
    const p = await project(
      { "chain.yaml": chainYaml({ concurrency: 4 }), "items.csv": itemsCsv(4) },
      { duration: 2_000, capacity: 1 },
    );
    p.api.configure({ faults: [{ endpoint: "cancel", kind: "slow", delayMs: 20_000 }] });
    const child = p.start(["apply", "chain.yaml"]);
    await waitForOutput(child, /in_queue #\d/);
    child.kill("SIGINT");
    await waitForOutput(child, "SIGINT received: stopping");
    child.kill("SIGINT");
    const result = await child;
    expect(result.exitCode).toBe(130);
    expect(result.timedOut).toBe(false);
  });
});
