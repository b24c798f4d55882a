/**
 * The step policy end to end, against the emulator: a step does what its table row says
 * (a row changed through an injected policy changes what the step does), and the decisions
 * no other engine test drove for real — no balance stops the run, an input the server
 * refuses is final, a request the API no longer knows is never submitted again.
 */
import { describe, expect, test } from "vitest";
import { createStepPolicy, STEP_TABLE } from "../src/engine/step-policy.js";
import { apply, chainWorkflow, emulator, items, openStore, tempDir, writeFiles } from "./engine-harness.js";

const HAILUO = "minimax/Hailuo Video 01 Live";

describe("a model step follows the step table", () => {
  test("a remote failure row changed to `final` in an injected policy: the step is submitted once, not retried", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, {
      "chain.yaml": chainWorkflow({
        items: [{ id: "oom", prompt: "a crash [emulator:fail=GPU out of memory]" }],
        mediaBase: api.url,
        retry: "{ attempts: 3, backoff: 10ms, max_backoff: 20ms }",
      }),
    });
    const stepPolicy = createStepPolicy({
      ...STEP_TABLE,
      "remote-failed": { decision: "final", endsIn: "failed", why: "this test: never retried" },
    });
    const result = await apply(dir, "chain.yaml", api, {}, { stepPolicy });
    expect(result.exitCode).toBe(1);
    expect(result.counts).toEqual({ failed: 1, blocked: 1 });
    const animate = result.steps.filter((e) => e.address === "clip/oom/animate");
    expect(animate.filter((e) => e.state === "submitting").map((e) => e.attempt)).toEqual([1]);
    // `final`, not a retry that ran out: no "(attempt 1 of 3)".
    expect(animate.at(-1)).toMatchObject({ state: "failed", error: "GPU out of memory" });
    expect(api.submissions().byModel).toEqual({ [HAILUO]: 1 });
  });

  test("no balance (402) stops the run: the step fails, the steps not yet submitted are cancelled", async () => {
    const api = await emulator({ noBalance: true });
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(3), mediaBase: api.url, concurrency: 1 }) });
    const result = await apply(dir, "chain.yaml", api);
    expect(result.exitCode).toBe(1);
    expect(result.counts).toMatchObject({ failed: 1, cancelled: 2 });
    const failed = result.steps.filter((e) => e.state === "failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error).toContain("no balance left");
    const cancelled = result.steps.filter((e) => e.state === "cancelled");
    expect(cancelled.map((e) => e.error)).toEqual([
      "not submitted: the RunComfy account has no balance left",
      "not submitted: the RunComfy account has no balance left",
    ]);
    expect(api.submissions().total).toBe(0);
  });

  test("an input the server refuses (422) is final: one attempt, no retry, nothing created", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, {
      // The local schema accepts any prompt; the emulator refuses a marker it cannot read, as
      // RunComfy refuses an input its newer schema does not accept.
      "chain.yaml": chainWorkflow({
        items: [{ id: "one", prompt: "a boat [emulator:duration=soon]" }],
        mediaBase: api.url,
        retry: "{ attempts: 3, backoff: 10ms, max_backoff: 20ms }",
      }),
    });
    const result = await apply(dir, "chain.yaml", api);
    expect(result.exitCode).toBe(1);
    expect(result.counts).toEqual({ failed: 1, blocked: 1 });
    const failed = result.steps.find((e) => e.state === "failed");
    expect(failed?.address).toBe("clip/one/animate");
    expect(failed?.error).toContain("rejected the input");
    expect(failed?.error).not.toContain("attempt");
    expect(api.requestLog().filter((entry) => entry.endpoint === "submit")).toHaveLength(1);
    expect(api.submissions().total).toBe(0);
    const store = openStore(dir);
    expect(store.getAttempts(result.runId, "clip/one/animate").map((a) => a.state)).toEqual(["failed"]);
  });

  test("a request the API no longer knows (404001) fails its step and is never submitted again", async () => {
    // Retention 0: a finished request is gone at the first look after its end.
    const api = await emulator({ retention: 0 });
    const dir = tempDir();
    writeFiles(dir, {
      "chain.yaml": chainWorkflow({
        items: [{ id: "gone", prompt: "a boat" }],
        mediaBase: api.url,
        retry: "{ attempts: 3, backoff: 10ms, max_backoff: 20ms }",
      }),
    });
    const result = await apply(dir, "chain.yaml", api);
    expect(result.exitCode).toBe(1);
    expect(result.counts).toEqual({ failed: 1, blocked: 1 });
    const failed = result.steps.find((e) => e.state === "failed");
    expect(failed?.error).toContain("is unknown to the RunComfy API or has expired");
    expect(api.submissions().byModel).toEqual({ [HAILUO]: 1 });
    const store = openStore(dir);
    expect(store.getAttempts(result.runId, "clip/gone/animate").map((a) => a.state)).toEqual(["failed"]);
  });
});
