/**
 * A request slot is the API's, not local work's (issue 14): it is free again once the API
 * says the request finished, so the next submission waits neither for the result's fetch
 * nor for the output's download; a step downloading does not keep a ready step of the same
 * model from starting. Ordered with the emulator's `hold` fault (a call that answers only at
 * the next release), never with durations.
 */
import { describe, expect, test } from "vitest";
import { itemsCsv, project, until } from "./apply-harness.js";

const ONE_AT_A_TIME = `version: 1
name: slots
concurrency: 1
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

describe("request slots at concurrency 1", () => {
  test("the next submission reaches the API while the finished request's result is still being fetched", async () => {
    const flow = await project({ "flow.yaml": ONE_AT_A_TIME, "items.csv": itemsCsv(2) });
    flow.api.configure({ faults: [{ endpoint: "result", kind: "hold", times: 1 }] });
    const run = flow.run(["apply", "flow.yaml", "--quiet"]);
    await until("the first request's /result is held", () => flow.api.state().heldCalls === 1);
    await until("the second step is submitted", () => flow.api.submissions().total === 2);
    // Still unanswered: the slot was given back at the status that said the request finished.
    expect(flow.api.state().heldCalls).toBe(1);
    flow.api.release();
    expect((await run).exitCode).toBe(0);
  }, 60_000);

  test("steps downloading their outputs keep no ready step from being submitted", async () => {
    const flow = await project({ "flow.yaml": ONE_AT_A_TIME, "items.csv": itemsCsv(3) });
    flow.api.configure({ faults: [{ endpoint: "files", kind: "hold" }] });
    const run = flow.run(["apply", "flow.yaml", "--quiet"]);
    await until("every step is submitted and downloading", () => {
      return flow.api.submissions().total === 3 && flow.api.state().heldCalls === 3;
    });
    // Still unanswered: the three submissions went out while the downloads waited.
    expect(flow.api.state().heldCalls).toBe(3);
    flow.api.release();
    expect((await run).exitCode).toBe(0);
  }, 60_000);
});
