import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { EventBus } from "../src/engine/events.js";
import { createTtyRenderer, type TerminalStream, type TtyRenderer } from "../src/render/tty/index.js";
import { runFinished, runStarted, stepEvent } from "./render-tty-events.js";

/** A terminal of a given size that records every write. */
class FakeTerminal extends Writable {
  readonly chunks: string[] = [];
  readonly isTTY = true;

  constructor(
    readonly rows: number,
    readonly columns: number,
  ) {
    super();
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    // The view draws no-break spaces (cheaper for log-update to measure); they read as spaces.
    this.chunks.push(String(chunk).replaceAll("\u00a0", " "));
    callback();
  }

  get text(): string {
    return this.chunks.join("");
  }
}

const views: TtyRenderer[] = [];
afterEach(async () => {
  for (const view of views.splice(0)) await view.stop();
});

function start(out: FakeTerminal, err: FakeTerminal, clock: { now: number }, bus: EventBus): TtyRenderer {
  const view = createTtyRenderer(bus, {
    stream: out as unknown as TerminalStream,
    errorStream: err as unknown as TerminalStream,
    now: () => clock.now,
    color: false,
    // Frames are drawn by flush() here; the timer must not add any while the test looks.
    fps: 0.001,
  });
  views.push(view);
  return view;
}

describe("createTtyRenderer", () => {
  it("draws the run from its events through listr2 and leaves the totals on screen at the end", async () => {
    const bus = new EventBus();
    const out = new FakeTerminal(12, 100);
    const err = new FakeTerminal(12, 100);
    const clock = { now: 0 };
    const sigintListeners = process.listenerCount("SIGINT");
    const view = start(out, err, clock, bus);
    // The engine owns Ctrl-C; the view adds no signal handler.
    expect(process.listenerCount("SIGINT")).toBe(sigintListeners);
    await view.ready;

    bus.emit(runStarted(0, 2, 1));
    bus.emit(stepEvent("teaser/a/animate", "pending", "waiting", 0));
    bus.emit(stepEvent("teaser/a/animate", "waiting", "submitting", 0));
    bus.emit(stepEvent("teaser/a/animate", "submitting", "in_progress", 1_000));
    clock.now = 43_000;
    view.flush();
    expect(out.text).toContain("teasers · run r-20250101-0200 · 43s elapsed");
    expect(out.text).toContain("  1 queued · 0 submitted · 1 running · 0 succeeded · 0 reused · 0 failed");
    expect(out.text).toContain("  teaser/a  animate: in_progress 0:42");

    // A stray write to stderr while the view draws would tear the frame: it is held back.
    err.write("a stray warning\n");
    expect(err.text).toBe("");

    bus.emit(stepEvent("teaser/a/animate", "in_progress", "succeeded", 44_000));
    bus.emit(stepEvent("teaser/a/restyle", "pending", "reused", 44_000));
    bus.emit(runFinished(45_000, 45_000, "succeeded"));
    await view.done;

    const finalFrame = out.text.slice(out.text.lastIndexOf("teasers · run"));
    expect(finalFrame).toContain("succeeded after 45s");
    expect(finalFrame).toContain("0 queued · 0 submitted · 0 running · 1 succeeded · 1 reused · 0 failed");
    expect(finalFrame).not.toContain("teaser/a  animate");
    expect(err.text).toBe("a stray warning\n");
    // The cursor is hidden while the view draws and shown again after.
    expect(out.text.indexOf("\u001b[?25l")).toBeLessThan(out.text.lastIndexOf("\u001b[?25h"));
  });

  it("keeps every frame within the terminal's height with thousands of active jobs", async () => {
    const bus = new EventBus();
    const out = new FakeTerminal(10, 60);
    const view = start(out, new FakeTerminal(10, 60), { now: 5_000 }, bus);
    await view.ready;
    bus.emit(runStarted(0, 4_000, 2_000));
    for (let i = 0; i < 2_000; i++) {
      bus.emit(stepEvent(`teaser/${i}/animate`, "submitting", "in_queue", i, { queuePosition: i + 1 }));
      if (i % 250 === 0) view.flush();
    }
    view.flush();
    const frames = out.chunks.filter((chunk) => chunk.includes("teasers · run"));
    expect(frames.length).toBeGreaterThan(1);
    for (const frame of frames) {
      // log-update ends a frame with a newline: the frame plus the cursor's line fill the rows.
      expect(frame.split("\n").length).toBeLessThanOrEqual(10);
    }
    expect(frames.at(-1)).toContain("… and 1,994 more active");
  });
});
