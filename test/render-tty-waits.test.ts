/**
 * The live view says why things wait (issue 15 item 7): a `limits` entry or the run's slots
 * full, a backoff (until when, after what), the API unreachable (since when) — per step and
 * in the header — and its ETA comes from the durations learned per model and the slots each
 * model gets, not from the throughput so far alone.
 */
import { describe, expect, it } from "vitest";
import type { RunEvent, StepWaitEvent, WaitReason } from "../src/engine/events.js";
import { estimateRemainingMs, type EtaInput } from "../src/render/tty/progress-model.js";
import { ProgressModel, renderFrame } from "../src/render/tty/index.js";
import { RUN_ID, runStarted, stepEvent } from "./render-tty-events.js";

const WIDE = { rows: 40, columns: 220 };
const ALEPH = "runwayml/runway-aleph/video-to-video";
const HAILUO = "minimax/Hailuo Video 01 Live";

function modelWith(...events: RunEvent[]): ProgressModel {
  const model = new ProgressModel();
  for (const event of events) model.apply(event);
  return model;
}

function wait(address: string, at: number, reason?: WaitReason): StepWaitEvent {
  const slash = address.lastIndexOf("/");
  return {
    event: "step_wait",
    at,
    runId: RUN_ID,
    job: address.slice(0, slash),
    step: address.slice(slash + 1),
    address,
    ...(reason ? { reason } : {}),
  };
}

describe("why things wait, in the live view", () => {
  it("names the limit a step waits for, per step and in the header", () => {
    const model = modelWith(
      runStarted(0, 3, 3),
      stepEvent("t/a/restyle", "submitting", "in_queue", 1_000, { queuePosition: 2, model: ALEPH }),
      stepEvent("t/b/restyle", "pending", "waiting", 1_000, { model: ALEPH }),
      wait("t/b/restyle", 1_000, { kind: "limit", model: ALEPH, limit: 1 }),
      stepEvent("t/c/restyle", "pending", "waiting", 1_000, { model: ALEPH }),
      wait("t/c/restyle", 1_000, { kind: "concurrency", concurrency: 8 }),
    );
    const frame = renderFrame(model, WIDE, 2_000);
    expect(frame[2]).toBe(
      `1 waiting for the limit of ${ALEPH} (1 at once) · 1 waiting for a request slot (concurrency 8) · 1 in the API's queue, the first at #2`,
    );
    expect(frame).toContain(`t/b  restyle: waiting for the limit of ${ALEPH} (1 at once)`);
    expect(frame).toContain("t/a  restyle: in_queue #2");
  });

  it("shows a backoff until when and after what, and drops it when the step moves again", () => {
    const model = modelWith(
      runStarted(0, 1, 1),
      stepEvent("t/a/animate", "submitting", "in_queue", 1_000, { queuePosition: 1 }),
      wait("t/a/animate", 5_000, {
        kind: "backoff",
        until: 17_000,
        why: "the RunComfy API failed the status call (HTTP 503)",
        before: "poll",
      }),
    );
    expect(renderFrame(model, WIDE, 7_000)).toContain(
      "t/a  animate: in_queue #1 · polling again in 0:10 after: the RunComfy API failed the status call (HTTP 503)",
    );
    expect(renderFrame(model, WIDE, 7_000)[2]).toBe("1 backing off · 1 in the API's queue, the first at #1");
    model.apply(stepEvent("t/a/animate", "in_queue", "in_progress", 18_000));
    const after = renderFrame(model, WIDE, 19_000);
    expect(after).toContain("t/a  animate: in_progress 0:01");
    // Nothing waits any more: no line for it.
    expect(after[2]).toBe("t/a  animate: in_progress 0:01");
  });

  it("says the API is unreachable since when and why, until it recovers", () => {
    const model = modelWith(
      runStarted(Date.UTC(2025, 0, 1, 2, 0, 0), 1, 1),
      stepEvent("t/a/animate", "submitting", "in_queue", Date.UTC(2025, 0, 1, 2, 0, 1)),
      {
        event: "api_unreachable",
        at: Date.UTC(2025, 0, 1, 2, 0, 20),
        runId: RUN_ID,
        since: Date.UTC(2025, 0, 1, 2, 0, 3),
        failures: 1,
        error: "the RunComfy API failed the status call (HTTP 502)\n<html>…",
      },
    );
    expect(renderFrame(model, WIDE, Date.UTC(2025, 0, 1, 2, 0, 43))[2]).toBe(
      "API unreachable since 02:00:03 (0:40): the RunComfy API failed the status call (HTTP 502) · 1 in the API's queue",
    );
    model.apply({ event: "api_recovered", at: Date.UTC(2025, 0, 1, 2, 0, 44), runId: RUN_ID, since: 0 });
    expect(renderFrame(model, WIDE, Date.UTC(2025, 0, 1, 2, 0, 45)).join("\n")).not.toContain("unreachable");
  });
});

describe("estimateRemainingMs", () => {
  const base: EtaInput = {
    remainingByModel: new Map(),
    typicalMs: new Map(),
    concurrency: 8,
    limits: {},
    otherRemaining: 0,
    throughputPerMinute: undefined,
  };

  it("is the slowest model's work over its limit when a limit is the bottleneck", () => {
    // 373 Aleph steps of 60 s, 2 at once: 373 × 60 s / 2; Hailuo's 10 × 30 s / 8 is nothing beside it.
    const eta = estimateRemainingMs({
      ...base,
      remainingByModel: new Map([
        [ALEPH, 373],
        [HAILUO, 10],
      ]),
      typicalMs: new Map([
        [ALEPH, 60_000],
        [HAILUO, 30_000],
      ]),
      limits: { [ALEPH]: 2 },
    });
    expect(eta).toBe((373 * 60_000) / 2);
  });

  it("is all the work over the run's slots when no limit binds", () => {
    const eta = estimateRemainingMs({
      ...base,
      remainingByModel: new Map([
        [ALEPH, 16],
        [HAILUO, 16],
      ]),
      typicalMs: new Map([
        [ALEPH, 60_000],
        [HAILUO, 30_000],
      ]),
    });
    expect(eta).toBe((16 * 60_000 + 16 * 30_000) / 8);
  });

  it("falls back to the throughput while a model with steps left has no duration yet, and is unknown without either", () => {
    const input = { ...base, remainingByModel: new Map([[ALEPH, 30]]), otherRemaining: 10 };
    expect(estimateRemainingMs(input)).toBeUndefined();
    expect(estimateRemainingMs({ ...input, throughputPerMinute: 20 })).toBe(2 * 60_000);
  });

  it("is zero with nothing left", () => {
    expect(estimateRemainingMs(base)).toBe(0);
  });
});

describe("the ETA of the live view", () => {
  it("stays with the learned durations when a burst of ends would swing the throughput", () => {
    const events: RunEvent[] = [
      { ...runStarted(0, 40, 40), concurrency: 4, limits: { [ALEPH]: 2 }, models: { [ALEPH]: 40 } },
      { event: "typical_duration", at: 0, runId: RUN_ID, model: ALEPH, typicalMs: 30_000 },
    ];
    const model = modelWith(...events);
    // 40 steps × 30 s over the model's 2 slots.
    expect(model.etaMs(1_000)).toBe(10 * 60_000);
    // Four end at once, two seconds in: the throughput says 120 steps/min (36 left: 18m).
    for (let i = 0; i < 4; i++) {
      model.apply(stepEvent(`t/${i}/restyle`, "pending", "waiting", 1_000, { model: ALEPH }));
      model.apply(stepEvent(`t/${i}/restyle`, "downloading", "succeeded", 1_500, { model: ALEPH }));
    }
    expect(model.throughputPerMinute(2_000)).toBe(120);
    // 36 left × 30 s over 2 slots.
    expect(model.etaMs(2_000)).toBe(9 * 60_000);
    expect(renderFrame(model, WIDE, 2_000)[0]).toContain("ETA 9m00s");
  });
});
