/**
 * Shared set-up of the engine tests: a real emulator on loopback, a real SQLite file, real
 * files in a temp folder, and apply driven in-process with every event collected.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach } from "vitest";
import { startEmulator, type EmulatorOptions, type RunningEmulator } from "../src/emulator/index.js";
import { applyWorkflow, type ApplyServices } from "../src/app/index.js";
import type { ApplyOutcome, ApplyRequest } from "../src/engine/apply.js";
import { EventBus, type RunEvent, type StepEvent } from "../src/engine/events.js";
import { RunControl } from "../src/engine/run-control.js";
import { openSqliteStore, type SqliteStore } from "../src/store/index.js";

export const TEST_TOKEN = "rf-test-token-5f3a9c1e7b2d";

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-engine-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function emulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const running = await startEmulator({ duration: 50, ...options });
  cleanups.push(() => running.close());
  return running;
}

/** Writes `files` (path → text) under `dir`. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}

/** A two-step chain (Hailuo → Aleph) over `items` inline items, polling fast. */
export function chainWorkflow(options: {
  name?: string;
  items: { id: string; prompt: string }[];
  mediaBase: string;
  retry?: string;
  restylePrompt?: string;
  concurrency?: number;
}): string {
  const items = options.items.map(
    (item) => `      - { id: ${JSON.stringify(item.id)}, prompt: ${JSON.stringify(item.prompt)} }`,
  );
  return `version: 1
name: ${options.name ?? "chain"}
concurrency: ${options.concurrency ?? 8}
defaults:
  retry: ${options.retry ?? "{ attempts: 2, backoff: 20ms, max_backoff: 100ms }"}
  poll: { interval: 20ms, max_interval: 200ms }
vars:
  media: "${options.mediaBase}"
jobs:
  clip:
    for_each:
${items.join("\n")}
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ vars.media }}/media/image.png?w=640&h=480"
      - id: restyle
        model: runwayml/runway-aleph/video-to-video
        input:
          prompt: "${options.restylePrompt ?? "watercolor"}"
          video_url: "\${{ steps.animate.output.video }}"
          ratio: "1280:720"
`;
}

export interface Applied extends ApplyOutcome {
  events: RunEvent[];
  steps: StepEvent[];
}

/** Runs apply in-process against the emulator and collects its events. */
export async function apply(
  dir: string,
  file: string,
  api: RunningEmulator,
  request: Partial<ApplyRequest> = {},
  services: Partial<ApplyServices> = {},
): Promise<Applied> {
  const events = new EventBus();
  const seen: RunEvent[] = [];
  events.subscribe((event) => seen.push(event));
  const outcome = await applyWorkflow(
    { file, cwd: dir, env: {}, api: { baseUrl: api.url, token: TEST_TOKEN }, ...request },
    { events, control: new RunControl(), apiRetry: { baseMs: 5, maxMs: 50 }, ...services },
  );
  return {
    ...outcome,
    events: seen,
    steps: seen.filter((event): event is StepEvent => event.event === "step"),
  };
}

export function openStore(dir: string): SqliteStore {
  const store = openSqliteStore(path.join(dir, "state", "runflow.db"), { secrets: [TEST_TOKEN] });
  cleanups.push(() => store.close());
  return store;
}

export function items(count: number, prefix = "item"): { id: string; prompt: string }[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${i + 1}`,
    prompt: `shot ${i + 1} of a paper boat`,
  }));
}
