/**
 * Issue 15 item 7, why things wait, through the real CLI. During an outage (every status call a 5xx) the plain log said nothing for
 * minutes. Now it says once that the API is unreachable, and once that it recovered. Driven
 * by the emulator's state, not by time: its status and result endpoints fail from before
 * the run until the test — having read the "unreachable" line — clears the faults at run
 * time (`POST /__emulator/config`).
 */
import { describe, expect, test } from "vitest";
import { project } from "./apply-harness.js";

const WORKFLOW = `version: 1
name: outage
concurrency: 1
defaults:
  retry: { attempts: 1 }
  poll: { interval: 25ms, max_interval: 250ms }
jobs:
  clip:
    for_each:
      - { id: boat, prompt: "a paper boat drifts down a rainy street" }
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "{{API}}/media/image.png?w=640&h=480"
`;

async function configureFaults(api: string, faults: unknown[]): Promise<void> {
  const answer = await fetch(`${api}/__emulator/config`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ faults }),
  });
  expect(answer.status).toBe(200);
}

describe("apply's plain log during an API outage", () => {
  test("says once that the API is unreachable, and once that it recovered after the faults are cleared", async () => {
    const flow = await project({ "flow.yaml": WORKFLOW }, { duration: 0 });
    // The submission goes through (a 5xx there would leave the step `unknown`); every status
    // and result call answers 503 until cleared.
    await configureFaults(flow.api.url, [
      { endpoint: "status", kind: "503" },
      { endpoint: "result", kind: "503" },
    ]);
    const child = flow.start(["apply", "flow.yaml"]);
    let stdout = "";
    const unreachable = new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        stdout += chunk;
        if (/API unreachable/.test(stdout)) resolve();
      });
      void child.then(() =>
        reject(new Error(`apply ended without saying the API is unreachable:\n${stdout}`)),
      );
    });
    await unreachable;
    // The API comes back.
    await configureFaults(flow.api.url, []);
    const result = await child;
    expect(result.exitCode, result.all).toBe(0);

    const lines = stdout.trimEnd().split("\n");
    const down = lines.filter((line) => line.includes("API unreachable"));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ warning: API unreachable since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: .*status call \(HTTP 503\)/,
    );
    const up = lines.findIndex((line) => /API recovered/.test(line));
    expect(up, stdout).toBeGreaterThan(lines.indexOf(down[0]!));
    expect(lines.filter((line) => /API recovered/.test(line))).toHaveLength(1);
    // The step went on to its end after the recovery.
    expect(lines.slice(up).join("\n")).toMatch(/clip\/boat\/animate succeeded/);
  }, 60_000);
});

describe("apply --json says why a step waits", () => {
  test("a step held back by its model's `limits` entry says which limit, in a step_wait event", async () => {
    const flow = await project({
      "flow.yaml": `version: 1
name: limited
concurrency: 8
limits:
  "minimax/Hailuo Video 01 Live": 1
defaults:
  retry: { attempts: 1 }
  poll: { interval: 25ms, max_interval: 250ms }
jobs:
  clip:
    for_each:
      - { id: a, prompt: "a paper boat" }
      - { id: b, prompt: "a paper plane" }
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "{{API}}/media/image.png?w=640&h=480"
`,
    });
    const result = await flow.run(["apply", "flow.yaml", "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    const events = result.stdout
      .trim()
      .split("\n")
      .map(
        (line) => JSON.parse(line) as { event: string; address?: string; reason?: unknown; limits?: unknown },
      );
    expect(events[0]).toMatchObject({
      event: "run_started",
      limits: { "minimax/Hailuo Video 01 Live": 1 },
      models: { "minimax/Hailuo Video 01 Live": 2 },
    });
    // Both steps start at once; the second finds the model's one slot taken.
    const waits = events.filter((event) => event.event === "step_wait");
    expect(waits).toEqual([
      expect.objectContaining({
        address: "clip/b/animate",
        reason: { kind: "limit", model: "minimax/Hailuo Video 01 Live", limit: 1 },
      }),
    ]);
  });
});
