/**
 * The one vocabulary of states and counts (src/render/vocabulary.ts): every view counts a
 * run's steps with these phrases, so the live header, the summary, `status`, `runs` and the
 * reports say the same thing about the same run.
 */
import { describe, expect, it } from "vitest";
import { StepState } from "../src/engine/states.js";
import {
  countOf,
  countsPhrase,
  GROUP_LABEL,
  GROUP_ORDER,
  groupCounts,
  scopePhrase,
  stateLabel,
  stepCountsLine,
} from "../src/render/vocabulary.js";

describe("the vocabulary of states and counts", () => {
  it("counts the states of a live run in the six groups of the live header, not per stored state", () => {
    // The run of issue 15: the header said `queued 79 · submitted 2 · running 4` and the
    // summary `73 pending, 6 waiting, 2 in_queue, 4 in_progress`.
    const counts = { pending: 73, waiting: 6, in_queue: 2, in_progress: 4 };
    expect(countsPhrase(counts)).toBe("79 queued, 2 submitted, 4 running");
    expect(groupCounts(counts)).toEqual({
      queued: 79,
      submitted: 2,
      running: 4,
      done: 0,
      reused: 0,
      failed: 0,
    });
  });

  it("names the failed group's other ends, which call for different actions, in a fixed order", () => {
    expect(countsPhrase({ blocked: 1, succeeded: 4, unknown: 1, failed: 1 })).toBe(
      "4 succeeded, 3 failed (1 unknown, 1 blocked)",
    );
    expect(countsPhrase({ failed: 2 })).toBe("2 failed");
    expect(countsPhrase({ timed_out: 1, cancelled: 2 })).toBe("3 failed (1 timed_out, 2 cancelled)");
  });

  it("says `none` for a run with no steps, and totals with a correct plural", () => {
    expect(countsPhrase({})).toBe("none");
    expect(stepCountsLine({ succeeded: 1 })).toBe("1 step: 1 succeeded");
    expect(stepCountsLine({ succeeded: 9_999, reused: 1 })).toBe("10,000 steps: 9,999 succeeded, 1 reused");
  });

  it("says how many steps in how many instances (of how many jobs), with plurals", () => {
    expect(scopePhrase({ steps: 6, instances: 3 })).toBe("6 steps in 3 instances");
    expect(scopePhrase({ steps: 1, instances: 1, jobs: 1 })).toBe("1 step in 1 instance of 1 job");
    expect(scopePhrase({ steps: 30, instances: 30, jobs: 2 })).toBe("30 steps in 30 instances of 2 jobs");
    expect(countOf(1, "job")).toBe("1 job");
    expect(countOf(0, "job")).toBe("0 jobs");
  });

  it("has a label for every group and shows every stored state by its stored name", () => {
    expect(GROUP_ORDER.map((group) => GROUP_LABEL[group])).toEqual([
      "queued",
      "submitted",
      "running",
      "succeeded",
      "reused",
      "failed",
    ]);
    for (const state of Object.values(StepState)) expect(stateLabel(state)).toBe(state);
  });
});
