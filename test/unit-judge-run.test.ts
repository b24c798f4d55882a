/**
 * judgeRun (src/engine/executor.ts): how a run ended, from why it stopped (if it did) and its
 * steps' final states. Every stop reason meets every shape of counts: a stop that says how
 * the run ended (token refused, interrupt, cancel) wins over the counts; otherwise the run
 * succeeded only when every step succeeded or was reused (SPEC §2 exit codes).
 */
import { describe, expect, test } from "vitest";
import { judgeRun } from "../src/engine/executor.js";
import type { StopReason } from "../src/engine/run-control.js";

const COUNTS: Record<string, Record<string, number>> = {
  "no steps": {},
  "all succeeded": { succeeded: 3 },
  "succeeded and reused": { succeeded: 2, reused: 5 },
  "all reused": { reused: 4 },
  "zero-count failures only": { succeeded: 2, failed: 0, unknown: 0, blocked: 0 },
  "one failed": { succeeded: 2, failed: 1 },
  "one timed out": { succeeded: 2, timed_out: 1 },
  "one cancelled": { succeeded: 2, cancelled: 1 },
  "one unknown": { succeeded: 2, unknown: 1 },
  "one blocked": { succeeded: 2, blocked: 1 },
  "held by the budget": { succeeded: 2, held: 1 },
  "left pending (an interrupt)": { succeeded: 2, pending: 1 },
  "left in progress (an interrupt)": { reused: 1, in_progress: 1 },
};

type Judgement = { status: string; exitCode: number };
const SUCCEEDED: Judgement = { status: "succeeded", exitCode: 0 };
const FAILED: Judgement = { status: "failed", exitCode: 1 };
const BY_COUNTS: Record<string, Judgement> = {
  "no steps": SUCCEEDED,
  "all succeeded": SUCCEEDED,
  "succeeded and reused": SUCCEEDED,
  "all reused": SUCCEEDED,
  "zero-count failures only": SUCCEEDED,
  "one failed": FAILED,
  "one timed out": FAILED,
  "one cancelled": FAILED,
  "one unknown": FAILED,
  "one blocked": FAILED,
  "held by the budget": FAILED,
  "left pending (an interrupt)": FAILED,
  "left in progress (an interrupt)": FAILED,
};

/**
 * A stop reason that decides the end whatever the counts; undefined: the counts decide.
 * Keyed by StopReason: a new reason does not type-check until it has its row.
 */
const STOPS: Record<StopReason | "not stopped", Judgement | undefined> = {
  "not stopped": undefined,
  // A 402 stops submitting; what already ran decides (the unsubmitted steps are cancelled).
  no_balance: undefined,
  auth_failed: { status: "auth_failed", exitCode: 4 },
  interrupted: { status: "interrupted", exitCode: 130 },
  cancelled: { status: "cancelled", exitCode: 1 },
};

const ROWS = Object.entries(STOPS).flatMap(([stop, decided]) =>
  Object.keys(COUNTS).map((counts) => [stop, counts, decided ?? BY_COUNTS[counts]!] as const),
);

describe("judgeRun", () => {
  test.each(ROWS)("stopped: %s, steps: %s → %o", (stop, counts, expected) => {
    const reason = stop === "not stopped" ? undefined : (stop as StopReason);
    expect(judgeRun(COUNTS[counts]!, reason)).toEqual(expected);
  });
});
