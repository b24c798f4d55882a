/**
 * Polling learns across runs: a model's typical duration is kept with its attempts, so the
 * next night's first requests are polled once, just after they are due, instead of on the
 * guessing schedule (1 s, 2 s, 3.5 s …).
 */
import { describe, expect, test } from "vitest";
import { itemsCsv, project } from "./apply-harness.js";

const ONE_STEP = `version: 1
name: typical
concurrency: 8
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

describe("polling across runs", () => {
  test("a later run polls each request once, at the duration earlier runs measured", async () => {
    // 2.5 s requests, all submitted at once: the first run can only guess (1 s, 2 s, 3.5 s).
    const flow = await project({ "flow.yaml": ONE_STEP, "items.csv": itemsCsv(4) }, { duration: 2_500 });
    const statusCalls = () => flow.api.state().calls.byEndpoint.status ?? 0;

    expect((await flow.run(["apply", "flow.yaml", "--quiet"], { timeoutMs: 30_000 })).exitCode).toBe(0);
    expect(statusCalls()).toBe(4 * 3);

    flow.api.reset();
    expect(
      (await flow.run(["apply", "flow.yaml", "--fresh", "--quiet"], { timeoutMs: 30_000 })).exitCode,
    ).toBe(0);
    expect(flow.api.submissions().total).toBe(4);
    expect(statusCalls()).toBe(4);
  });
});
