/**
 * Set-up of the end-to-end tests: the BUILT CLI spawned as a user runs it, against an
 * emulator on loopback started by the test (RUNCOMFY_BASE_URL), in a temp project folder.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { execa } from "execa";
import { afterEach, beforeAll } from "vitest";
import { startEmulator, type EmulatorOptions, type RunningEmulator } from "../src/emulator/index.js";
import { openSqliteStore, type SqliteStore } from "../src/store/index.js";
import { assertCliBuilt, CLI_ENTRY, spawnCli, type CliResult } from "./helpers/spawn-cli.js";

export const TOKEN = "rf-e2e-token-8c41d2f09a7e";

const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(() => assertCliBuilt());

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function startCli(args: readonly string[], cwd: string, env: Record<string, string | undefined>) {
  return execa(process.execPath, [CLI_ENTRY, ...args], {
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "ignore",
    reject: false,
    all: true,
    timeout: 60_000,
  });
}

/** A CLI process started in the background. */
export type Child = ReturnType<typeof startCli>;

export interface Project {
  dir: string;
  api: RunningEmulator;
  /** Runs `runflow ARGS` in the project with the token and the emulator's URL. */
  run(
    args: readonly string[],
    options?: { timeoutMs?: number; env?: Record<string, string | undefined> },
  ): Promise<CliResult>;
  /** Starts `runflow ARGS` without waiting (for signals and kills). */
  start(args: readonly string[], options?: { env?: Record<string, string | undefined> }): Child;
  store(): SqliteStore;
}

export async function project(
  files: Record<string, string>,
  emulatorOptions: EmulatorOptions = {},
): Promise<Project> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-e2e-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const api = await startEmulator({ duration: 50, ...emulatorOptions });
  cleanups.push(() => api.close());
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text.replaceAll("{{API}}", api.url));
  }
  const env = { RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: api.url, RUNFLOW_STATE: undefined };
  return {
    dir,
    api,
    run: (args, options = {}) =>
      spawnCli(args, { cwd: dir, env: { ...env, ...options.env }, timeoutMs: options.timeoutMs ?? 60_000 }),
    start: (args, options = {}) => {
      const child = startCli(args, dir, { ...env, ...options.env });
      cleanups.push(() => {
        if (child.exitCode === null) child.kill("SIGKILL");
      });
      return child;
    },
    store: () => {
      const store = openSqliteStore(path.join(dir, "state", "runflow.db"), { readonly: true, secrets: [] });
      cleanups.push(() => store.close());
      return store;
    },
  };
}

/** A CSV of `count` items (`id,prompt`), with `extra(i)` appended to the i-th prompt (1-based). */
export function itemsCsv(count: number, extra: (index: number) => string = () => ""): string {
  const rows = ["id,prompt"];
  for (let i = 1; i <= count; i++)
    rows.push(`item-${i},"shot ${i}: a paper boat drifts down a rainy street${extra(i)}"`);
  return `${rows.join("\n")}\n`;
}

/** The Hailuo → Aleph chain over items.csv, polling fast. */
export function chainYaml(
  options: { name?: string; retry?: string; concurrency?: number; restylePrompt?: string } = {},
): string {
  return `version: 1
name: ${options.name ?? "chain"}
concurrency: ${options.concurrency ?? 8}
defaults:
  retry: ${options.retry ?? "{ attempts: 2, backoff: 50ms, max_backoff: 200ms }"}
  poll: { interval: 25ms, max_interval: 250ms }
vars:
  media: "{{API}}"
jobs:
  clip:
    for_each: items.csv
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ vars.media }}/media/image.png?w=640&h=480"
      - id: restyle
        model: runwayml/runway-aleph/video-to-video
        input:
          prompt: "${options.restylePrompt ?? "hand-painted watercolor"}"
          video_url: "\${{ steps.animate.output.video }}"
          ratio: "1280:720"
`;
}

export interface NdjsonEvent {
  event: string;
  [key: string]: unknown;
}

/** Parses NDJSON stdout; throws on any line that is not a JSON object with an `event`. */
export function ndjson(stdout: string): NdjsonEvent[] {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const parsed = JSON.parse(line) as NdjsonEvent;
      if (typeof parsed.event !== "string") throw new Error(`not an event: ${line}`);
      return parsed;
    });
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(full));
    else found.push(full);
  }
  return found;
}

export function fileSize(file: string): number {
  return statSync(file).size;
}

export function readBytes(file: string): Buffer {
  return readFileSync(file);
}

/** Every submission group's count, by body: the emulator's proof of "submitted exactly once". */
export function submissionCounts(api: RunningEmulator): number[] {
  return api.submissions().byBody.map((group) => group.count);
}

/** Resolves when `child`'s combined output contains `text`. */
export function waitForOutput(child: Child, text: string | RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (typeof text === "string" ? seen.includes(text) : text.test(seen)) {
        child.all?.off("data", onData);
        resolve();
      }
    };
    child.all?.on("data", onData);
    child.then(
      () => reject(new Error(`the process ended before printing ${String(text)}:\n${seen}`)),
      reject,
    );
  });
}

/**
 * Resolves once `check()` holds, looking every few milliseconds: how a test waits for a state
 * it can observe (the emulator's, the database's) instead of for a duration. Fails after
 * `timeoutMs` saying what never happened.
 */
export async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * How many steps of the project's runs have a request id recorded (0 before the database
 * exists); only the steps at `address` when given.
 */
export function recordedRequests(dir: string, address?: string): number {
  const file = path.join(dir, "state", "runflow.db");
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma("busy_timeout = 1000");
    const row = db
      .prepare(
        "SELECT count(*) AS n FROM steps WHERE request_id IS NOT NULL AND address = coalesce(?, address)",
      )
      .get(address ?? null) as { n: number };
    return row.n;
  } catch {
    // Not created yet, or its tables not yet: nothing recorded.
    return 0;
  } finally {
    db?.close();
  }
}

/** The row of the workflow's lock in the project's database, read as another process sees it; undefined when none. */
export function lockHolder(dir: string, workflowName: string): { runId: string; pid: number } | undefined {
  const file = path.join(dir, "state", "runflow.db");
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma("busy_timeout = 1000");
    const row = db
      .prepare("SELECT run_id AS runId, pid FROM locks WHERE workflow_name = ?")
      .get(workflowName) as { runId: string; pid: number } | undefined;
    return row;
  } catch {
    // Not created yet, or its tables not yet: no lock.
    return undefined;
  } finally {
    db?.close();
  }
}
