import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project, recordedRequests, until, waitForOutput } from "./apply-harness.js";

/** Every request of these items stays in progress until the test releases it. */
const HELD = () => " [emulator:hold]";

async function phaseOf(apiUrl: string, requestId: string): Promise<string> {
  const answer = (await (await fetch(`${apiUrl}/__emulator/requests/${requestId}`)).json()) as {
    phase: string;
  };
  return answer.phase;
}

describe("signals", () => {
  test("SIGINT exits 130 with queued requests cancelled at the API; the next apply completes", async () => {
    const p = await project(
      { "chain.yaml": chainYaml({ concurrency: 8 }), "items.csv": itemsCsv(8, HELD) },
      { capacity: 2 },
    );
    const child = p.start(["apply", "chain.yaml"]);
    // Two held in progress, six queued behind them until the test says otherwise; all eight
    // recorded, so each queued one is known to the run that stops.
    await until("8 recorded request ids", () => recordedRequests(p.dir) === 8);
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
    expect(state.requests).toMatchObject({ cancelled: 6, in_queue: 0, in_progress: 2 });
    const store = p.store();
    const run = store.latestRun()!;
    expect(run.status).toBe("interrupted");
    expect(run.exitCode).toBe(130);
    const cancelled = store.getSteps(run.id, { states: ["cancelled"] });
    expect(cancelled.length).toBe(state.requests.cancelled);
    for (const step of cancelled) expect(await phaseOf(p.api.url, step.requestId!)).toBe("cancelled");

    p.api.release();
    p.api.configure({ capacity: null });
    const again = await p.run(["apply", "chain.yaml"]);
    expect(again.exitCode).toBe(0);
    // Apart from the requests cancelled while queued, every body was accepted once.
    for (const group of p.api.submissions().byBody) {
      const phases = await Promise.all(group.requestIds.map((id) => phaseOf(p.api.url, id)));
      expect(phases.filter((phase) => phase !== "cancelled")).toHaveLength(1);
    }
  });

  test("SIGINT just after the submissions: the requests are recorded as remote, not submitting, and the next apply re-attaches to them", async () => {
    const p = await project({ "chain.yaml": chainYaml({ concurrency: 4 }), "items.csv": itemsCsv(4, HELD) });
    const child = p.start(["apply", "chain.yaml"]);
    // Every request created and its id recorded; held, none can finish meanwhile.
    await until("4 recorded request ids", () => recordedRequests(p.dir) === 4);
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
    expect(p.api.release()).toBe(4);

    const again = await p.run(["apply", "chain.yaml"]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout.match(/re-attached to request/g)).toHaveLength(4);
    expect(p.api.submissions().byModel["minimax/Hailuo Video 01 Live"]).toBe(4);
  });

  test("a second SIGINT exits at once, even while the first is still cancelling", async () => {
    const p = await project(
      { "chain.yaml": chainYaml({ concurrency: 4 }), "items.csv": itemsCsv(4, HELD) },
      { capacity: 1 },
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
