/**
 * The composition root's store seam (src/app/open-store.ts): a file path opens the SQLite
 * database there; a `postgres://` URL opens the PostgreSQL adapter — one that cannot be
 * reached is refused with one clear error, without echoing a password the URL may hold —
 * and an apply given one as its state reaches that seam with the URL intact (not resolved
 * as a path). (test/cli-postgres-state.test.ts runs the CLI on a real server.)
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { applyWorkflow, openStateStore } from "../src/app/index.js";
import { EventBus } from "../src/engine/events.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-open-store-"));
  dirs.push(dir);
  return dir;
}

describe("openStateStore chooses the adapter by location", () => {
  test("a file path is the SQLite database there", async () => {
    const file = path.join(tempDir(), "state", "runflow.db");
    const store = await openStateStore(file);
    await store.close();
    expect(existsSync(file)).toBe(true);
  });

  test("a postgres:// URL opens the PostgreSQL adapter: one nothing answers at is refused, its password not repeated", async () => {
    // Port 1 on loopback: refused at once.
    const error: unknown = await openStateStore("postgres://runflow:s3cret-pw@127.0.0.1:1/runflow").catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "state_unreachable" });
    expect((error as Error).message).toContain(
      "cannot reach the PostgreSQL state at postgres://runflow:***@127.0.0.1:1/runflow",
    );
    expect((error as Error).message).not.toContain("s3cret-pw");
  });

  test("an apply whose state is a postgres:// URL reaches the seam with the URL, and makes no file of it", async () => {
    const dir = tempDir();
    writeFileSync(
      path.join(dir, "w.yaml"),
      `version: 1
name: w
jobs:
  local:
    steps:
      - id: hello
        run: [echo, hello]
`,
    );
    const error: unknown = await applyWorkflow(
      { file: "w.yaml", cwd: dir, env: {}, statePath: "postgres://127.0.0.1:1/runflow" },
      { events: new EventBus() },
    ).catch((e: unknown) => e);
    expect((error as Error).message).toContain(
      "cannot reach the PostgreSQL state at postgres://127.0.0.1:1/runflow",
    );
    expect(existsSync(path.join(dir, "postgres:"))).toBe(false);
  });
});
