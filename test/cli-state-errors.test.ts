/**
 * A state database runflow cannot use, through the built CLI as a user meets it: `status`,
 * `runs` and `apply` say which file is wrong and what to do, exit 2 (3 for a database another
 * process holds), and never end in "report it if it persists" (exit 1).
 */
import { mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { openSqliteStore } from "../src/store/index.js";
import { assertCliBuilt, spawnCli, type CliResult } from "./helpers/spawn-cli.js";
import { newRun, tempDir } from "./store-helpers.js";

const WORKFLOW = "version: 1\nname: tiny\njobs:\n  a:\n    steps:\n      - { id: s, run: [echo, hi] }\n";

// An emulator of the test's own on a free port: `--emulator` would take the fixed 8787,
// which another test (or another process on the machine) may hold.
let api: RunningEmulator;
beforeAll(async () => {
  assertCliBuilt();
  api = await startEmulator({ duration: 20 });
});
afterAll(async () => api.close());

function cli(dir: string, state: string, ...args: string[]): Promise<CliResult> {
  return spawnCli([...args, "--state", state], {
    cwd: dir,
    env: {
      RUNCOMFY_API_TOKEN: "rf-state-errors-token",
      YOUR_API_TOKEN: undefined,
      RUNCOMFY_BASE_URL: api.url,
      RUNFLOW_STATE: undefined,
    },
    timeoutMs: 60_000,
  });
}

/** `status`, `runs` and `apply` (a run step only) on `state`. */
async function everyCommand(dir: string, state: string): Promise<Record<string, CliResult>> {
  writeFileSync(path.join(dir, "tiny.yaml"), WORKFLOW);
  return {
    status: await cli(dir, state, "status"),
    runs: await cli(dir, state, "runs"),
    apply: await cli(dir, state, "apply", "tiny.yaml"),
  };
}

/** A database with one run in it, closed (its WAL folded into the file). */
function databaseWithARun(): string {
  const dbPath = path.join(tempDir(), "state", "runflow.db");
  const store = openSqliteStore(dbPath, { secrets: [] });
  store.createRun(newRun());
  store.close();
  return dbPath;
}

function expectRefused(result: CliResult, exitCode: number, ...fragments: string[]): void {
  expect(result.exitCode, result.stderr).toBe(exitCode);
  for (const fragment of fragments) expect(result.stderr).toContain(fragment);
  expect(result.stderr).not.toContain("report it if it persists");
  expect(result.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(result.stdout).not.toContain("succeeded");
}

describe("a state database runflow cannot use", () => {
  test("random bytes at --state: not a runflow database (exit 2), the file left as it was", async () => {
    const dir = tempDir();
    const state = path.join(dir, "runflow.db");
    const bytes = Buffer.alloc(8192, 0).map((_, index) => (index * 7919 + 13) % 251);
    writeFileSync(state, bytes);
    const results = await everyCommand(dir, state);
    for (const result of Object.values(results)) {
      expectRefused(result, 2, `${state} is not a runflow state database`, "--state");
    }
    expect(readFileSync(state).equals(bytes)).toBe(true);
  });

  test("a damaged page inside a real database: says it is damaged and what to do (exit 2), for every command", async () => {
    const state = databaseWithARun();
    // Overwrite the page that holds the runs table: the header stays valid, so the damage
    // shows only when a command reads its runs. Before, that was "report it if it persists".
    const db = new Database(state, { readonly: true });
    const { rootpage } = db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").get() as {
      rootpage: number;
    };
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    db.close();
    const fd = openSync(state, "r+");
    writeSync(fd, Buffer.alloc(pageSize, 0x5a), 0, pageSize, (rootpage - 1) * pageSize);
    closeSync(fd);

    const results = await everyCommand(path.dirname(state), state);
    for (const result of Object.values(results)) {
      expectRefused(result, 2, `the state database ${state} is damaged`, "move it aside");
    }
  });

  test("a truncated database and a folder at --state: exit 2, naming the path", async () => {
    const whole = readFileSync(databaseWithARun());
    const dir = tempDir();
    const truncated = path.join(dir, "truncated.db");
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    for (const result of Object.values(await everyCommand(dir, truncated))) {
      expectRefused(result, 2, truncated);
    }
    const folder = path.join(dir, "a-folder");
    mkdirSync(folder);
    for (const result of Object.values(await everyCommand(dir, folder))) {
      expectRefused(
        result,
        2,
        `the state database ${folder} is a folder, not a file`,
        `${folder}/runflow.db`,
      );
    }
  });

  test("a database another process holds (BEGIN EXCLUSIVE): names the file and says it can be retried (exit 3)", async () => {
    const state = databaseWithARun();
    const dir = path.dirname(state);
    const holder = new Database(state);
    holder.exec("BEGIN EXCLUSIVE");
    try {
      // Readers of a WAL database are not blocked by a writer: status and runs still answer.
      expect((await cli(dir, state, "runs")).exitCode).toBe(0);
      writeFileSync(path.join(dir, "tiny.yaml"), WORKFLOW);
      // apply waits the busy timeout (10 s) for the write lock, then gives up.
      const apply = await cli(dir, state, "apply", "tiny.yaml");
      expectRefused(
        apply,
        3,
        `the state database ${state} is locked by another process`,
        "run the command again",
      );
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
    // Once it is let go, the same command runs.
    const again = await cli(dir, state, "apply", "tiny.yaml");
    expect(again.exitCode, again.stderr).toBe(0);
  }, 90_000);
});
