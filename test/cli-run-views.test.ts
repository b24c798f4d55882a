/**
 * Which view a run gets (src/cli/run-views.ts): on a terminal the live view starts with the
 * run, and what comes before it (waiting for another apply's lock) is said on stderr.
 */
import { PassThrough } from "node:stream";
import { describe, expect, test } from "vitest";
import type { GlobalOptions, Output } from "../src/cli/context.js";
import { subscribeViews } from "../src/cli/run-views.js";
import { EventBus } from "../src/engine/events.js";

const GLOBALS: GlobalOptions = {
  state: "state/runflow.db",
  json: false,
  quiet: false,
  verbose: false,
  models: [],
};

function fakeTerminal(): NodeJS.WriteStream {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, rows: 20, columns: 80 });
  (stream as unknown as PassThrough).resume();
  return stream;
}

describe("the views of a run on a terminal", () => {
  test("say on stderr what happens before the run starts, then draw the live view from run_started", async () => {
    const stderr: string[] = [];
    const stdout: string[] = [];
    const output: Output = {
      stdout: (t) => stdout.push(t),
      stderr: (t) => stderr.push(t),
      terminal: fakeTerminal(),
    };
    const events = new EventBus();
    const views = await subscribeViews(events, GLOBALS, output);

    events.emit({
      event: "notice",
      at: Date.UTC(2026, 0, 1),
      runId: "r1",
      level: "info",
      message: "waiting for the lock",
    });
    expect(views.live).toBeUndefined();
    expect(stderr).toEqual(["2026-01-01T00:00:00Z waiting for the lock"]);

    events.emit({
      event: "run_started",
      at: Date.UTC(2026, 0, 1),
      runId: "r1",
      workflow: "teasers",
      file: "teasers.yaml",
      kind: "apply",
      steps: 4,
      jobs: 2,
      concurrency: 2,
    });
    expect(views.live).toBeDefined();
    // The view saw the event that started it.
    expect(views.live!.model.header).toMatchObject({ runId: "r1", totalSteps: 4 });
    await views.end();
    expect(stdout).toEqual([]);
  });

  test("never draw when the run is refused before it starts", async () => {
    const output: Output = { stdout: () => {}, stderr: () => {}, terminal: fakeTerminal() };
    const views = await subscribeViews(new EventBus(), GLOBALS, output);
    await views.end();
    expect(views.live).toBeUndefined();
  });
});
