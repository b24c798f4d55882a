import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { makeRedactor } from "../src/store/redact.js";
import { openSqliteStore, REDACTED, tokensFromEnvironment, type SqliteStore } from "../src/store/index.js";
import { modelStep, newRun, tempDbPath } from "./store-helpers.js";

const TOKEN = "rf-test-token-7d1c0b5e9a4f4c2b8e6d";
const CAT = "teaser/cat/animate";

/** Every file SQLite keeps for the database: the file itself, its WAL and shared memory. */
function databaseFiles(dbPath: string): string[] {
  const dir = path.dirname(dbPath);
  return readdirSync(dir)
    .filter((name) => name.startsWith(path.basename(dbPath)))
    .map((name) => path.join(dir, name));
}

function filesContaining(files: readonly string[], needle: string): string[] {
  return files.filter((file) => readFileSync(file).includes(Buffer.from(needle)));
}

/** A whole run as the engine would write it, with the token leaking into stdout and an error. */
function writeRunWithLeaks(store: SqliteStore): void {
  store.createRun(
    newRun({
      plan: { steps: [{ address: CAT, body: { prompt: "a cat" } }] },
      options: { concurrency: 2, baseUrl: "http://127.0.0.1:8787", header: `Bearer ${TOKEN}` },
    }),
  );
  store.insertSteps(
    "run-1",
    [modelStep(CAT), modelStep("teaser/cat/poster", { kind: "run", model: undefined })],
    1_000,
  );
  store.startAttempt({
    runId: "run-1",
    address: CAT,
    attempt: 1,
    workflowName: "teasers",
    fingerprint: "fp",
    startedAt: 2,
  });
  store.recordRequestId({ runId: "run-1", address: CAT, attempt: 1 }, "req-1", 3);
  store.updateAttempt(
    { runId: "run-1", address: CAT, attempt: 1 },
    { state: "failed", error: `401 for token ${TOKEN}` },
  );
  store.updateStep("run-1", CAT, {
    updatedAt: 4,
    state: "failed",
    error: `auth refused: Authorization: Bearer ${TOKEN}`,
  });
  store.updateStep("run-1", "teaser/cat/poster", {
    updatedAt: 5,
    state: "succeeded",
    stdout: `HOME=/root\nRUNCOMFY_API_TOKEN=${TOKEN}\n`,
    input: ["env"],
  });
  store.recordOutput({ runId: "run-1", address: CAT, name: "video", url: "https://cdn/v.mp4", createdAt: 6 });
}

describe("the API token never reaches the state files", () => {
  const saved = process.env.RUNCOMFY_API_TOKEN;
  beforeEach(() => {
    process.env.RUNCOMFY_API_TOKEN = TOKEN;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.RUNCOMFY_API_TOKEN;
    else process.env.RUNCOMFY_API_TOKEN = saved;
  });

  test("a run written with the token in the environment leaves no trace of it in the db, WAL or shm", () => {
    const dbPath = tempDbPath();
    const store = openSqliteStore(dbPath);
    try {
      writeRunWithLeaks(store);
      const whileOpen = databaseFiles(dbPath);
      expect(whileOpen.some((f) => f.endsWith("-wal"))).toBe(true);
      expect(filesContaining(whileOpen, "req-1")).not.toEqual([]);
      expect(filesContaining(whileOpen, TOKEN)).toEqual([]);
    } finally {
      store.close();
    }
    expect(existsSync(dbPath)).toBe(true);
    expect(filesContaining(databaseFiles(dbPath), TOKEN)).toEqual([]);
  });

  test("what leaked is kept, with the token replaced, and JSON still parses", () => {
    const store = openSqliteStore(tempDbPath());
    try {
      writeRunWithLeaks(store);
      expect(store.getStep("run-1", "teaser/cat/poster")?.stdout).toBe(
        `HOME=/root\nRUNCOMFY_API_TOKEN=${REDACTED}\n`,
      );
      expect(store.getStep("run-1", CAT)?.error).toBe(`auth refused: Authorization: Bearer ${REDACTED}`);
      expect(store.getAttempts("run-1", CAT)[0]?.error).toBe(`401 for token ${REDACTED}`);
      expect(store.getRun("run-1")?.options).toMatchObject({ header: `Bearer ${REDACTED}` });
    } finally {
      store.close();
    }
  });
});

describe("redaction", () => {
  test("the token is read from either documented variable", () => {
    expect(tokensFromEnvironment({ RUNCOMFY_API_TOKEN: " abc ", YOUR_API_TOKEN: "def" })).toEqual([
      "abc",
      "def",
    ]);
    expect(tokensFromEnvironment({})).toEqual([]);
  });

  test("short values are not treated as secrets, so ordinary words survive", () => {
    const redact = makeRedactor(["test", TOKEN]);
    expect(redact(`a test of ${TOKEN} and ${TOKEN}`)).toBe(`a test of ${REDACTED} and ${REDACTED}`);
  });
});
