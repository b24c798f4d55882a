/**
 * RunControl (src/engine/run-control.ts): how a run is told to stop, and why. The first
 * reason wins; every stop ends new submissions; only an interrupt or a refused token also
 * ends the watching of requests already sent; listeners hear the first stop once.
 */
import { describe, expect, test } from "vitest";
import { isStopSignal, RunControl, StopSignal, type StopReason } from "../src/engine/run-control.js";

const REASONS: readonly [StopReason, { stopsWatching: boolean; message: string }][] = [
  ["interrupted", { stopsWatching: true, message: "not submitted: the run was interrupted" }],
  ["cancelled", { stopsWatching: false, message: "not submitted: the run was cancelled" }],
  ["auth_failed", { stopsWatching: true, message: "not submitted: the API refused the token" }],
  [
    "no_balance",
    { stopsWatching: false, message: "not submitted: the RunComfy account has no balance left" },
  ],
];

describe("RunControl", () => {
  test("a run not told to stop submits and watches", () => {
    const control = new RunControl();
    expect(control.stopped).toBe(false);
    expect(control.reason).toBeUndefined();
    expect(control.submitSignal.aborted).toBe(false);
    expect(control.watchSignal.aborted).toBe(false);
    expect(control.watching).toBe(true);
  });

  test.each(REASONS)(
    "stop(%s): no new submission; watching stops only on an interrupt or refused token",
    (reason, expected) => {
      const control = new RunControl();
      control.stop(reason);
      expect(control.stopped).toBe(true);
      expect(control.reason).toBe(reason);
      expect(control.submitSignal.aborted).toBe(true);
      expect(control.watchSignal.aborted).toBe(expected.stopsWatching);
      expect(control.watching).toBe(!expected.stopsWatching);
      expect(control.notSubmittedMessage()).toBe(expected.message);
      // The abort reason tells a stop apart from a timeout or a failure.
      const signalReason: unknown = control.submitSignal.reason;
      expect(isStopSignal(signalReason)).toBe(true);
      expect((signalReason as StopSignal).reason).toBe(reason);
    },
  );

  test("the first reason wins; an interrupt after a cancel stays a cancel but stops watching", () => {
    const control = new RunControl();
    const heard: StopReason[] = [];
    control.onStop((reason) => heard.push(reason));
    control.stop("cancelled");
    expect(control.watching).toBe(true);
    control.stop("interrupted");
    expect(control.reason).toBe("cancelled");
    expect(control.watching).toBe(false);
    expect((control.watchSignal.reason as StopSignal).reason).toBe("interrupted");
    expect((control.submitSignal.reason as StopSignal).reason).toBe("cancelled");
    expect(control.notSubmittedMessage()).toBe("not submitted: the run was cancelled");
    // Listeners hear the first stop only.
    expect(heard).toEqual(["cancelled"]);
  });

  test("every listener hears the first stop, in the order they listened", () => {
    const control = new RunControl();
    const heard: string[] = [];
    control.onStop((reason) => heard.push(`a:${reason}`));
    control.onStop((reason) => heard.push(`b:${reason}`));
    control.stop("no_balance");
    control.stop("no_balance");
    expect(heard).toEqual(["a:no_balance", "b:no_balance"]);
  });

  test("a step left by a run never stopped records the interrupt's message", () => {
    expect(new RunControl().notSubmittedMessage()).toBe("not submitted: the run was interrupted");
  });

  test("only a StopSignal is a stop", () => {
    expect(isStopSignal(new StopSignal("cancelled"))).toBe(true);
    expect(isStopSignal(new Error("run stopped: cancelled"))).toBe(false);
    expect(isStopSignal(new DOMException("timed out", "TimeoutError"))).toBe(false);
    expect(isStopSignal(undefined)).toBe(false);
  });
});
