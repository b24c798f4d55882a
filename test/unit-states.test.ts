/**
 * The step state machine (src/engine/states.ts), edge by edge. Every allowed edge is a named
 * row with the rule of SPEC §4/§5 (or the engine's need) behind it, and every pair of states
 * not in the table must be refused: adding, removing or moving an edge fails a row that says
 * which one and why it was there.
 */
import { describe, expect, test } from "vitest";
import {
  canTransition,
  DISPLAY_GROUP,
  IllegalTransitionError,
  isSuccess,
  isTerminal,
  RETRYABLE_STATES,
  StepState,
  TERMINAL_STATES,
} from "../src/engine/states.js";

const ALL = Object.values(StepState);

/** [from, to, why it is allowed]. */
const ALLOWED: readonly [StepState, StepState, string][] = [
  // pending: the step's dependencies have succeeded, or it was re-attached after a crash.
  ["pending", "waiting", "ready: waits for a slot"],
  ["pending", "blocked", "a step it depends on did not succeed (SPEC §4, steps)"],
  ["pending", "reused", "its fingerprint matches an earlier success (SPEC §5, reuse)"],
  ["pending", "failed", "its input could not be prepared (a check before submission)"],
  ["pending", "cancelled", "the run stopped before it started"],
  ["pending", "unknown", "an earlier submission's answer was lost: never resubmitted silently (SPEC §4)"],
  ["pending", "downloading", "re-attached to a request that finished: only its outputs are left (SPEC §5)"],
  ["pending", "in_queue", "re-attached to a queued request after a crash (SPEC §5)"],
  ["pending", "in_progress", "re-attached to a running request after a crash (SPEC §5)"],
  // waiting: ready, waiting for a slot or a backoff.
  ["waiting", "submitting", "a slot is free: the POST goes out"],
  ["waiting", "running", "a run step's process starts"],
  ["waiting", "reused", "reuse decided once its input was resolved"],
  ["waiting", "failed", "its input failed the model's checks: nothing submitted (SPEC §4, model inputs)"],
  ["waiting", "cancelled", "the run stopped while it waited"],
  ["waiting", "unknown", "an earlier request of it may be billed: held, not resubmitted (SPEC §4)"],
  ["waiting", "held", "its estimate would pass --max-cost (SPEC §9)"],
  ["waiting", "downloading", "re-attached to a finished request"],
  ["waiting", "in_queue", "re-attached to a queued request"],
  ["waiting", "in_progress", "re-attached to a running request"],
  // submitting: the POST is on the wire.
  ["submitting", "in_queue", "the API answered with a request id"],
  ["submitting", "in_progress", "the first status says it runs"],
  ["submitting", "downloading", "the request finished before its first poll"],
  ["submitting", "succeeded", "finished with nothing to download"],
  ["submitting", "failed", "a 4xx validation error: not retried (SPEC §4)"],
  ["submitting", "timed_out", "the attempt's timeout passed"],
  ["submitting", "cancelled", "the run stopped"],
  ["submitting", "unknown", "the answer was lost or a 5xx: the request may exist (SPEC §4)"],
  ["submitting", "waiting", "429 or refused before sending: surely nothing created, retried (SPEC §4)"],
  // in_queue: the request exists remotely.
  ["in_queue", "in_queue", "a new queue position"],
  ["in_queue", "in_progress", "the API started it"],
  ["in_queue", "downloading", "it finished between two polls"],
  ["in_queue", "succeeded", "finished with nothing to download"],
  ["in_queue", "failed", "the remote request failed, no attempts left"],
  ["in_queue", "timed_out", "cancelled while queued after its timeout (SPEC §4, timeouts)"],
  ["in_queue", "cancelled", "queued requests are cancelled on a stop (SPEC §5, signals)"],
  ["in_queue", "unknown", "its status can no longer be learned"],
  ["in_queue", "waiting", "the remote request failed: a new attempt (SPEC §4, retries)"],
  ["in_progress", "in_progress", "still running (a new poll)"],
  ["in_progress", "downloading", "finished: its outputs are fetched"],
  ["in_progress", "succeeded", "finished with nothing to download"],
  ["in_progress", "failed", "the remote request failed, no attempts left"],
  ["in_progress", "timed_out", "its timeout passed (it cannot be cancelled, the run says so)"],
  ["in_progress", "cancelled", "a cancelled run's step"],
  ["in_progress", "unknown", "its status can no longer be learned"],
  ["in_progress", "waiting", "the remote request failed: a new attempt"],
  // downloading: outputs written to a temporary file and renamed (SPEC §5).
  ["downloading", "succeeded", "every output is on disk"],
  ["downloading", "failed", "an output could not be fetched or was not valid"],
  ["downloading", "cancelled", "the run stopped during the download"],
  ["downloading", "waiting", "the output was unusable: a new attempt"],
  // running: a run step's process.
  ["running", "succeeded", "exit 0 and its named outputs exist"],
  ["running", "failed", "non-zero exit or a missing output"],
  ["running", "timed_out", "the process ran past its timeout"],
  ["running", "cancelled", "the run stopped"],
  ["running", "waiting", "a failed attempt with attempts left"],
  // A retry within the same run starts the next attempt from a failed or timed-out one.
  ["failed", "waiting", "the next attempt of the same run"],
  ["timed_out", "waiting", "the next attempt of the same run"],
];

/** Edges that would break a promise of the SPEC, each named for the promise. */
const FORBIDDEN: readonly [StepState, StepState, string][] = [
  ["unknown", "waiting", "a request that may be billed is never resubmitted silently (SPEC §4)"],
  ["unknown", "submitting", "a request that may be billed is never resubmitted silently (SPEC §4)"],
  ["pending", "submitting", "a step waits for a slot (and the budget) before its POST"],
  ["pending", "succeeded", "nothing succeeds without running, reuse or a collected request"],
  ["pending", "held", "the budget is asked only when the step is about to be submitted (SPEC §9)"],
  ["submitting", "held", "the budget decides before the POST, never after it went out (SPEC §9)"],
  ["submitting", "reused", "once a request may exist, reuse can no longer replace it"],
  ["submitting", "submitting", "a POST is one edge: the same attempt is never sent twice"],
  ["in_queue", "submitting", "a request that exists is collected, never submitted again (SPEC §5)"],
  ["in_progress", "submitting", "a request that exists is collected, never submitted again (SPEC §5)"],
  ["in_progress", "in_queue", "a running request does not go back to the queue"],
  ["downloading", "submitting", "a finished request is not submitted again"],
  ["downloading", "timed_out", "the timeout runs from submission to a terminal status, not downloads"],
  ["running", "submitting", "a run step has no request"],
  ["running", "in_queue", "a run step has no request"],
  ["succeeded", "waiting", "a success is final"],
  ["reused", "waiting", "a reuse is final"],
  ["cancelled", "waiting", "a cancelled step is re-run by a new apply or retry, not in its run"],
  ["blocked", "waiting", "a blocked step is re-run by a new apply or retry, not in its run"],
  ["held", "waiting", "a held step waits for an apply with a larger budget (SPEC §9)"],
  ["held", "submitting", "a held step is never submitted in its run (SPEC §9)"],
  ["failed", "succeeded", "a failure becomes a success only through a new attempt"],
  ["waiting", "blocked", "a step that is ready had its dependencies succeed"],
  ["waiting", "pending", "a ready step never waits for its dependencies again"],
];

describe("the step state machine", () => {
  test.each(ALLOWED)("%s → %s is allowed: %s", (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  test.each(FORBIDDEN)("%s → %s is refused: %s", (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  test("no edge outside the table: every other pair of states is refused", () => {
    const allowed = new Set(ALLOWED.map(([from, to]) => `${from} → ${to}`));
    const extra: string[] = [];
    for (const from of ALL) {
      for (const to of ALL) {
        if (canTransition(from, to) && !allowed.has(`${from} → ${to}`)) extra.push(`${from} → ${to}`);
      }
    }
    expect(extra).toEqual([]);
  });

  test("the tables of this file name each edge once and contradict nothing", () => {
    const allowed = ALLOWED.map(([from, to]) => `${from} → ${to}`);
    expect(new Set(allowed).size).toBe(allowed.length);
    const contradictions = FORBIDDEN.map(([from, to]) => `${from} → ${to}`).filter((edge) =>
      allowed.includes(edge),
    );
    expect(contradictions).toEqual([]);
  });

  test("the terminal states: only a failed or timed-out step leaves one (for its next attempt)", () => {
    expect([...TERMINAL_STATES].sort()).toEqual(
      ["blocked", "cancelled", "failed", "held", "reused", "succeeded", "timed_out", "unknown"].sort(),
    );
    for (const state of ALL) {
      const leaves = ALL.filter((to) => canTransition(state, to));
      expect(isTerminal(state), state).toBe(TERMINAL_STATES.has(state));
      if (state === "failed" || state === "timed_out") expect(leaves, state).toEqual(["waiting"]);
      else if (isTerminal(state)) expect(leaves, state).toEqual([]);
      else expect(leaves.length, `${state} is not terminal, so it must lead somewhere`).toBeGreaterThan(0);
    }
  });

  test("success is succeeded or reused, nothing else", () => {
    expect(ALL.filter(isSuccess).sort()).toEqual(["reused", "succeeded"]);
  });

  test("retry re-runs the failed, timed-out, cancelled, blocked and held steps, not unknown ones (SPEC §2)", () => {
    expect([...RETRYABLE_STATES].sort()).toEqual(["blocked", "cancelled", "failed", "held", "timed_out"]);
    for (const state of RETRYABLE_STATES) expect(isTerminal(state), state).toBe(true);
    expect(RETRYABLE_STATES.has("unknown")).toBe(false);
  });

  test("every non-terminal state can still reach a terminal one", () => {
    for (const start of ALL) {
      const seen = new Set<StepState>([start]);
      const stack = [start];
      while (stack.length > 0) {
        const state = stack.pop()!;
        for (const to of ALL)
          if (canTransition(state, to) && !seen.has(to)) {
            seen.add(to);
            stack.push(to);
          }
      }
      expect([...seen].some(isTerminal), start).toBe(true);
    }
  });

  test("the header groups of the views (SPEC §6): every state in one, the failures under failed", () => {
    const byGroup: Record<string, string[]> = {};
    for (const state of ALL) (byGroup[DISPLAY_GROUP[state]] ??= []).push(state);
    for (const list of Object.values(byGroup)) list.sort();
    expect(byGroup).toEqual({
      queued: ["pending", "waiting"],
      submitted: ["in_queue", "submitting"],
      running: ["downloading", "in_progress", "running"],
      done: ["succeeded"],
      reused: ["reused"],
      failed: ["blocked", "cancelled", "failed", "held", "timed_out", "unknown"],
    });
  });

  test("an illegal change names the step and both states", () => {
    expect(new IllegalTransitionError("clip/cat/animate", "succeeded", "waiting").message).toBe(
      "step clip/cat/animate: illegal state change succeeded → waiting",
    );
  });
});
