import { describe, expect, it } from "vitest";
import {
  colorEnabled,
  FAILURE_LINGER_MS,
  ProgressModel,
  renderFrame,
  THROUGHPUT_WINDOW_MS,
} from "../src/render/tty/index.js";
import { runFinished, runStarted, stepEvent } from "./render-tty-events.js";

const WIDE = { rows: 40, columns: 200 };
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

function modelWith(...events: Parameters<ProgressModel["apply"]>[0][]): ProgressModel {
  const model = new ProgressModel();
  for (const event of events) model.apply(event);
  return model;
}

describe("renderFrame", () => {
  it("says it is starting before the run has begun", () => {
    expect(renderFrame(new ProgressModel(), WIDE, 0)).toEqual([
      "starting…",
      "0 queued · 0 submitted · 0 running · 0 succeeded · 0 reused · 0 failed",
    ]);
  });

  it("counts steps per header group as they change state", () => {
    const model = modelWith(
      runStarted(0, 6, 3),
      stepEvent("teaser/a/animate", "pending", "waiting", 1_000),
      stepEvent("teaser/a/animate", "waiting", "submitting", 1_000),
      stepEvent("teaser/b/animate", "pending", "waiting", 1_000),
      stepEvent("teaser/b/animate", "waiting", "submitting", 1_000),
      stepEvent("teaser/b/animate", "submitting", "in_queue", 2_000, { queuePosition: 1 }),
      stepEvent("teaser/b/animate", "in_queue", "in_progress", 3_000),
      stepEvent("teaser/c/animate", "pending", "reused", 1_000, { reusedFrom: "r-old" }),
      stepEvent("teaser/c/restyle", "pending", "blocked", 1_000),
    );
    expect(renderFrame(model, WIDE, 5_000)[1]).toBe(
      "2 queued · 1 submitted · 1 running · 0 succeeded · 1 reused · 1 failed",
    );
  });

  it("shows a queued step's position and how long a step has been in progress", () => {
    const model = modelWith(
      runStarted(0, 2, 2),
      stepEvent("teaser/a/animate", "submitting", "in_queue", 1_000, { queuePosition: 3 }),
      stepEvent("teaser/b/animate", "in_queue", "in_progress", 10_000),
      // A repeated in_progress (a poll) does not restart the clock.
      stepEvent("teaser/b/animate", "in_progress", "in_progress", 30_000),
    );
    expect(renderFrame(model, WIDE, 52_000).slice(2)).toEqual([
      "teaser/a  animate: in_queue #3",
      "teaser/b  animate: in_progress 0:42",
    ]);
  });

  it("lists each active job's steps: succeeded, reused, downloading, running and a later attempt", () => {
    const model = modelWith(
      runStarted(0, 5, 2),
      stepEvent("teaser/a/animate", "downloading", "succeeded", 1_000),
      stepEvent("teaser/a/restyle", "in_queue", "in_progress", 2_000, { attempt: 2 }),
      stepEvent("teaser/b/animate", "pending", "reused", 1_000),
      stepEvent("teaser/b/restyle", "in_progress", "downloading", 3_000),
      stepEvent("teaser/b/encode", "waiting", "running", 3_000),
    );
    expect(renderFrame(model, WIDE, 3_600_000 + 62_000).slice(2)).toEqual([
      "teaser/a  animate: succeeded · restyle: in_progress 1:01:00 (attempt 2)",
      "teaser/b  animate: reused · restyle: downloading · encode: running 1:00:59",
    ]);
  });

  it("shows the first line of a failed step's error, with control characters made harmless", () => {
    const model = modelWith(
      runStarted(0, 2, 1),
      stepEvent("teaser/a/animate", "waiting", "submitting", 500),
      stepEvent("teaser/a/restyle", "submitting", "in_queue", 1_000),
      stepEvent("teaser/a/animate", "submitting", "failed", 2_000, {
        error: "\u001b[31mimage too small\u001b[0m (200×200 px)\nsecond line of detail",
      }),
    );
    expect(renderFrame(model, WIDE, 3_000)[2]).toBe(
      "teaser/a  animate: failed:  [31mimage too small [0m (200×200 px) · restyle: in_queue",
    );
  });

  it("keeps a job that just failed listed for a while after it leaves the active list", () => {
    const model = modelWith(
      runStarted(0, 1, 1),
      stepEvent("teaser/a/animate", "submitting", "in_progress", 1_000),
      stepEvent("teaser/a/animate", "in_progress", "failed", 2_000, { error: "content policy" }),
    );
    expect(renderFrame(model, WIDE, 2_000 + FAILURE_LINGER_MS).slice(2)).toEqual([
      "teaser/a  animate: failed: content policy",
    ]);
    expect(renderFrame(model, WIDE, 2_001 + FAILURE_LINGER_MS).slice(2)).toEqual([]);
  });

  it("stays within the terminal's height with 10,000 active jobs and says how many more there are", () => {
    const model = new ProgressModel();
    model.apply(runStarted(0, 20_000, 10_000));
    for (let i = 0; i < 10_000; i++) {
      model.apply(stepEvent(`teaser/${i}/animate`, "submitting", "in_queue", i, { queuePosition: i + 1 }));
    }
    model.apply(stepEvent("teaser/0/animate", "in_queue", "failed", 20_000, { error: "boom" }));
    const lines = renderFrame(model, { rows: 20, columns: 60 }, 20_000);
    expect(lines).toHaveLength(20);
    expect(lines[2]).toBe("teaser/1  animate: in_queue #2");
    expect(lines[17]).toBe("teaser/16  animate: in_queue #17");
    expect(lines[18]).toBe("… and 9,983 more active");
    // A failure keeps a row at the bottom even when active jobs would fill the screen.
    expect(lines[19]).toBe("teaser/0  animate: failed: boom");
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(60);
  });

  it("never draws more lines than the terminal has, however small", () => {
    const model = new ProgressModel();
    model.apply(runStarted(0, 50, 50));
    for (let i = 0; i < 50; i++) model.apply(stepEvent(`j/${i}/s`, "submitting", "in_queue", i));
    for (const rows of [1, 2, 3, 4]) {
      expect(renderFrame(model, { rows, columns: 80 }, 100).length).toBeLessThanOrEqual(rows);
    }
    expect(renderFrame(model, { rows: 3, columns: 80 }, 100)[2]).toBe("… and 50 more active");
  });

  it("cuts a long line to the width and marks the cut with an ellipsis", () => {
    const model = modelWith(
      runStarted(0, 1, 1),
      stepEvent("teaser/a/animate", "in_progress", "failed", 1_000, { error: "x".repeat(300) }),
    );
    const line = renderFrame(model, { rows: 10, columns: 40 }, 1_000)[2] ?? "";
    expect(line).toBe(`teaser/a  animate: failed: ${"x".repeat(12)}…`);
    expect([...line]).toHaveLength(40);
  });

  it("measures throughput over the last minute and estimates the time left from it", () => {
    const model = new ProgressModel();
    model.apply(runStarted(0, 100, 100));
    // 30 steps end in the first two minutes; only the 20 of the last minute count.
    for (let i = 0; i < 30; i++) {
      const at = i < 10 ? 10_000 + i : 70_000 + i * 1_000;
      model.apply(stepEvent(`teaser/${i}/animate`, "downloading", "succeeded", at));
    }
    model.apply(stepEvent("teaser/x/animate", "pending", "reused", 100_000));
    const now = 60_000 + THROUGHPUT_WINDOW_MS;
    // 20 steps/min; 69 steps left → 3m27s.
    expect(renderFrame(model, WIDE, now)[0]).toBe(
      `teasers · run r-20250101-0200 · 2m00s elapsed · 20.0 steps/min · ETA 3m27s`,
    );
  });

  it("shows no rate before any step has ended", () => {
    const model = modelWith(runStarted(0, 2, 1), stepEvent("teaser/a/animate", "pending", "waiting", 0));
    expect(renderFrame(model, WIDE, 5_000)[0]).toBe(
      "teasers · run r-20250101-0200 · 5s elapsed · — steps/min · ETA —",
    );
  });

  it("shows a recent notice under the jobs", () => {
    const model = modelWith(runStarted(0, 1, 1), {
      event: "notice",
      at: 1_000,
      runId: "r",
      level: "warn",
      message: "took over the lock of a dead process",
    });
    expect(renderFrame(model, WIDE, 2_000).at(-1)).toBe("warning: took over the lock of a dead process");
  });

  it("shows only the totals once the run has finished", () => {
    const model = modelWith(
      runStarted(0, 1, 1),
      stepEvent("teaser/a/animate", "downloading", "succeeded", 5_000),
      runFinished(185_000, 185_000, "succeeded"),
    );
    expect(renderFrame(model, WIDE, 190_000)).toEqual([
      "teasers · run r-20250101-0200 · succeeded after 3m05s",
      "0 queued · 0 submitted · 0 running · 1 succeeded · 0 reused · 0 failed",
    ]);
  });

  it("colours only when asked, and cuts by visible width, never inside an escape sequence", () => {
    const model = modelWith(
      runStarted(0, 1, 1),
      stepEvent("teaser/a/animate", "downloading", "succeeded", 1_000),
      stepEvent("teaser/a/restyle", "in_progress", "failed", 2_000, { error: "bad ".repeat(50) }),
    );
    const plain = renderFrame(model, { rows: 10, columns: 50 }, 3_000);
    const colored = renderFrame(model, { rows: 10, columns: 50 }, 3_000, { color: true });
    expect(plain.join("")).not.toMatch(ANSI);
    expect(colored[2]).toContain("\u001b[32msucceeded\u001b[39m");
    expect(colored.map((line) => line.replace(ANSI, ""))).toEqual(plain);
  });
});

describe("colorEnabled", () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };

  it("colours a terminal and not a pipe by default", () => {
    expect(colorEnabled({}, tty)).toBe(true);
    expect(colorEnabled({}, pipe)).toBe(false);
  });

  it("turns colour off with a non-empty NO_COLOR", () => {
    expect(colorEnabled({ NO_COLOR: "1" }, tty)).toBe(false);
    expect(colorEnabled({ NO_COLOR: "" }, tty)).toBe(true);
  });

  it("lets FORCE_COLOR override both the stream and NO_COLOR", () => {
    expect(colorEnabled({ FORCE_COLOR: "1" }, pipe)).toBe(true);
    expect(colorEnabled({ FORCE_COLOR: "1", NO_COLOR: "1" }, pipe)).toBe(true);
    expect(colorEnabled({ FORCE_COLOR: "0" }, tty)).toBe(false);
  });
});
