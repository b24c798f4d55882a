// Benchmark: the live TTY view fed 10,000 jobs × 2 steps of synthetic engine events (six
// state changes per step, 64 steps in flight), drawn at 10 frames per simulated second into
// a fake 40×120 terminal. Prints the CPU cost per 1,000 events and per frame, and the
// tallest frame (it must stay within the terminal's height).
// Run after a build: `npx tsc -p tsconfig.build.json && node bench/tty-render.js [jobs] [--json]`
// (`npm run bench` runs it too).
import { Writable } from "node:stream";
import { EventBus } from "../dist/engine/events.js";
import { createTtyRenderer } from "../dist/render/tty/index.js";

const jobs = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 10_000);
// --json: the figures as one JSON line (what bench/run.js reads) instead of the prose.
const asJson = process.argv.includes("--json");
const STEPS = ["animate", "restyle"];
const IN_FLIGHT = 64;
const ROWS = 40;
const COLUMNS = 120;
const FRAME_MS = 100;
// Simulated time per state: a step spends 0.5–3.5 s in each remote state.
const PATH = ["waiting", "submitting", "in_queue", "in_progress", "downloading", "succeeded"];

let frameCount = 0;
let maxFrameLines = 0;
let bytes = 0;
class FakeTerminal extends Writable {
  isTTY = true;
  rows = ROWS;
  columns = COLUMNS;
  _write(chunk, _encoding, callback) {
    const text = String(chunk);
    bytes += text.length;
    if (text.includes("steps/min") || text.includes(" after ")) {
      frameCount += 1;
      // log-update ends each frame with a newline: lines on screen = newlines.
      maxFrameLines = Math.max(maxFrameLines, text.split("\n").length - 1);
    }
    callback();
  }
}

let now = 0;
const bus = new EventBus((error) => {
  throw error;
});
const terminal = new FakeTerminal();
const view = createTtyRenderer(bus, {
  stream: terminal,
  errorStream: new FakeTerminal(),
  now: () => now,
  color: true,
  // Frames are drawn below at 10 per simulated second; the real timer stays out of the way.
  fps: 0.001,
});
await view.ready;

// A deterministic pseudo-random duration per state change.
let seed = 42;
const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;

let events = 0;
const emit = (event) => {
  events += 1;
  bus.emit(event);
};
const runId = "bench";
emit({
  event: "run_started",
  at: 0,
  runId,
  workflow: "bench",
  file: "bench.yaml",
  kind: "apply",
  steps: jobs * 2,
  jobs,
  concurrency: IN_FLIGHT,
});

// Each live step: [job index, step index, position in PATH, time of its next change].
const live = [];
let nextJob = 0;
const startNext = () => {
  if (nextJob < jobs) live.push([nextJob++, 0, -1, now]);
};
for (let i = 0; i < IN_FLIGHT; i++) startNext();

const cpuBefore = process.cpuUsage();
const wallBefore = performance.now();
let nextFrameAt = 0;
let frameCpuUs = 0;
while (live.length > 0) {
  now += 50;
  for (let i = live.length - 1; i >= 0; i--) {
    const step = live[i];
    if (step[3] > now) continue;
    const previous = step[2] < 0 ? "pending" : PATH[step[2]];
    step[2] += 1;
    const state = PATH[step[2]];
    const job = `teaser/${String(step[0]).padStart(5, "0")}`;
    emit({
      event: "step",
      at: now,
      runId,
      job,
      step: STEPS[step[1]],
      address: `${job}/${STEPS[step[1]]}`,
      state,
      previous,
      attempt: 1,
      queuePosition: state === "in_queue" ? 1 + Math.floor(random() * 20) : undefined,
    });
    step[3] = now + 500 + Math.floor(random() * 3_000);
    if (state === "succeeded") {
      live.splice(i, 1);
      if (step[1] + 1 < STEPS.length) live.push([step[0], step[1] + 1, -1, now]);
      else startNext();
    }
  }
  if (now >= nextFrameAt) {
    const before = process.cpuUsage();
    view.flush();
    const spent = process.cpuUsage(before);
    frameCpuUs += spent.user + spent.system;
    nextFrameAt = now + FRAME_MS;
  }
}
emit({ event: "run_finished", at: now, runId, status: "succeeded", exitCode: 0, elapsedMs: now, counts: {} });
await view.done;
const cpu = process.cpuUsage(cpuBefore);
const wallMs = performance.now() - wallBefore;
const cpuMs = (cpu.user + cpu.system) / 1_000;

const frameMs = frameCpuUs / 1_000;
const eventMs = cpuMs - frameMs;
if (asJson) {
  console.log(
    JSON.stringify({
      jobs,
      events,
      frames: frameCount,
      msPerFrame: frameMs / frameCount,
      msPer1000Events: (eventMs / events) * 1_000,
      maxFrameLines,
      rows: ROWS,
    }),
  );
  process.exit(0);
}
console.log(
  `jobs: ${jobs} × ${STEPS.length} steps: ${events} events, ${frameCount} frames drawn ` +
    `(10 per simulated second over ${(now / 1_000).toFixed(0)} s, ${IN_FLIGHT} steps in flight)`,
);
console.log(`CPU total: ${cpuMs.toFixed(0)} ms (wall ${wallMs.toFixed(0)} ms)`);
console.log(
  `  folding events into the model: ${((eventMs / events) * 1_000).toFixed(2)} ms per 1,000 events`,
);
console.log(
  `  drawing (renderFrame + listr2 + log-update): ${(frameMs / frameCount).toFixed(2)} ms per frame ` +
    `→ at most ${((frameMs / frameCount) * 10).toFixed(0)} ms of CPU per second at 10 fps`,
);
console.log(`  all included: ${((cpuMs / events) * 1_000).toFixed(1)} ms per 1,000 events`);
console.log(
  `max lines per frame: ${maxFrameLines} (terminal: ${ROWS} rows); ${(bytes / 1_000_000).toFixed(1)} MB written`,
);
