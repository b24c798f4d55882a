/**
 * Polling learns across runs: a model's typical duration is kept with its attempts, so the
 * next night's first requests are polled once, just after they are due, instead of on the
 * guessing schedule (1 s, 2 s, 2.5 s, 3.1 s …). And within a run: while a model's duration is
 * unknown, one of its requests guesses; the others, in flight, look once it is learned.
 */
import { describe, expect, test } from "vitest";
import { itemsCsv, project, until } from "./apply-harness.js";

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
    // 2.5 s requests. During the first run the emulator's time stands still until its
    // guessing request has been polled twice (the guessing schedule looks at 1 s and 2 s), so
    // however slow the machine, the first run needs more than one look per request; then its
    // time goes on from where it stood, and each request ends 2.5 s (server-measured) after its creation.
    const stoppedAt = Date.now();
    let resumedAt: number | undefined = undefined;
    const clock = { now: () => (resumedAt === undefined ? stoppedAt : stoppedAt + Date.now() - resumedAt) };
    const flow = await project(
      { "flow.yaml": ONE_STEP, "items.csv": itemsCsv(4) },
      { duration: 2_500, clock },
    );
    const statusCalls = () => flow.api.state().calls.byEndpoint.status ?? 0;
    const pollsPerRequest = () => {
      const counts = new Map<string, number>();
      for (const call of flow.api.requestLog())
        if (call.endpoint === "status") counts.set(call.path, (counts.get(call.path) ?? 0) + 1);
      return [...counts.values()];
    };

    const first = flow.run(["apply", "flow.yaml", "--quiet"]);
    await until("the first run's guessing request polled twice", () =>
      pollsPerRequest().some((count) => count >= 2),
    );
    resumedAt = Date.now();
    expect((await first).exitCode).toBe(0);
    expect(statusCalls()).toBeGreaterThan(4);

    // The second run: due 2.5 s + a margin after its submission's answer, which the server
    // created before answering: each request is done at its first look, on any machine.
    flow.api.reset();
    expect((await flow.run(["apply", "flow.yaml", "--fresh", "--quiet"])).exitCode).toBe(0);
    expect(flow.api.submissions().total).toBe(4);
    expect(statusCalls()).toBe(4);
  }, 120_000);
});

describe("polling within a run", () => {
  test("while a model's duration is unknown one request guesses; the others look once, when its end teaches the duration", async () => {
    // 2 s requests; the emulator's time stands still until the guessing request has looked
    // twice, so nothing ends before that however slow the machine. The others' own wait is
    // a minute (max_interval): only what the run learns makes them look sooner.
    const stoppedAt = Date.now();
    let resumedAt: number | undefined = undefined;
    const clock = { now: () => (resumedAt === undefined ? stoppedAt : stoppedAt + Date.now() - resumedAt) };
    const workflow = ONE_STEP.replace("jobs:", "defaults:\n  poll: { max_interval: 60s }\njobs:");
    const flow = await project(
      { "flow.yaml": workflow, "items.csv": itemsCsv(4) },
      { duration: 2_000, clock },
    );
    const pollsPerRequest = () => {
      const counts = new Map<string, number>();
      for (const call of flow.api.requestLog())
        if (call.endpoint === "status") counts.set(call.path, (counts.get(call.path) ?? 0) + 1);
      return [...counts.values()].sort((a, b) => b - a);
    };

    const run = flow.run(["apply", "flow.yaml", "--quiet"]);
    await until("one request looked twice", () => (pollsPerRequest()[0] ?? 0) >= 2);
    expect(flow.api.submissions().total).toBe(4);
    // Only the guessing request has looked.
    expect(pollsPerRequest()).toHaveLength(1);
    resumedAt = Date.now();
    expect((await run).exitCode).toBe(0);

    // Each of the three others: one status poll (finding it done) and one result.
    const polls = pollsPerRequest();
    expect(polls).toHaveLength(4);
    expect(polls.slice(1)).toEqual([1, 1, 1]);
    expect(flow.api.state().calls.byEndpoint.result).toBe(4);
  }, 120_000);

  test("the others look once the guessing request is seen finished, not only after its result", async () => {
    // The guessing request's /result is held: its duration cannot be learned from it. The
    // others' own wait is a minute (max_interval): only the guessing request's finished
    // status, seen at its look, makes them look sooner.
    const workflow = ONE_STEP.replace("jobs:", "defaults:\n  poll: { max_interval: 60s }\njobs:");
    const flow = await project({ "flow.yaml": workflow, "items.csv": itemsCsv(4) }, { duration: 2_000 });
    flow.api.configure({ faults: [{ endpoint: "result", kind: "hold", times: 1 }] });
    const looked = () =>
      new Set(
        flow.api
          .requestLog()
          .filter((call) => call.endpoint === "status")
          .map((call) => call.path),
      );

    const run = flow.run(["apply", "flow.yaml", "--quiet"]);
    await until("each of the four requests looked at", () => looked().size === 4);
    // The guessing request's result is still held: nothing else could have taught the others.
    expect(flow.api.state().heldCalls).toBe(1);
    flow.api.release();
    expect((await run).exitCode).toBe(0);
    expect(flow.api.submissions().total).toBe(4);
  }, 120_000);
});
