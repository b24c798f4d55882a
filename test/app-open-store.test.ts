/**
 * The composition root's store seam (src/app/open-store.ts): a file path opens the SQLite
 * database there; a `postgres://` URL is refused with one clear usage error until the
 * PostgreSQL adapter lands — without echoing a password the URL may hold — and an apply
 * given one as its state reaches that seam with the URL intact (not resolved as a path).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { applyWorkflow, openStateStore } from "../src/app/index.js";
import { EventBus } from "../src/engine/events.js";
import { UsageError } from "../src/errors.js";

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

  test("a postgres:// URL is refused as not supported yet, its password not repeated", async () => {
    const error: unknown = await openStateStore(
      "postgres://runflow:s3cret-pw@db.example.com:5432/runflow",
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toContain("PostgreSQL state store");
    expect((error as UsageError).message).toContain("not supported yet");
    expect((error as UsageError).message).toContain("db.example.com");
    expect((error as UsageError).message).not.toContain("s3cret-pw");
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
      { file: "w.yaml", cwd: dir, env: {}, statePath: "postgres://db.example.com/runflow" },
      { events: new EventBus() },
    ).catch((e: unknown) => e);
    expect((error as Error).message).toContain(
      "a PostgreSQL state store (postgres://db.example.com/runflow)",
    );
    expect(existsSync(path.join(dir, "postgres:"))).toBe(false);
  });
});
