/**
 * Schema 6: a run's API origin, and the later run that finished what it left. Real SQLite
 * files: one made at schema 5 by the real migrations, then opened by this version.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { describe, expect, test } from "vitest";
import { MIGRATIONS, migrate } from "../src/store/migrations.js";
import { openSqliteStore } from "../src/store/sqlite.js";
import type { SqliteStore, StoredStepState } from "../src/store/index.js";
import { modelStep, newRun, open, tempDbPath } from "./store-helpers.js";

const CAT = "teaser/cat/animate";
const DOG = "teaser/dog/animate";

/** A database at schema 5 (before origins) with an `apply --emulator` run and a plain one, each with an open attempt. */
function schemaFiveDatabase(): string {
  const file = tempDbPath();
  open(file).close();
  // Rebuilt from nothing at schema 5, exactly as version 5 of runflow left its files.
  const db = new Database(`${file}.v5`);
  db.pragma("journal_mode = WAL");
  migrate(
    db,
    file,
    MIGRATIONS.filter((m) => m.version <= 5),
  );
  const insertRun = db.prepare(
    `INSERT INTO runs (id, workflow_name, workflow_file, kind, plan_json, options_json, pid, hostname, started_at)
     VALUES (?, 'teasers', 'teasers.yaml', 'apply', 'null', ?, 1, 'host', ?)`,
  );
  insertRun.run("embedded", JSON.stringify({ emulator: true }), 1_000);
  insertRun.run("plain", JSON.stringify({ emulator: false }), 2_000);
  for (const run of ["embedded", "plain"]) {
    db.prepare(
      `INSERT INTO steps (run_id, address, job_id, instance_key, step_id, kind, state, fingerprint, created_at, updated_at)
       VALUES (?, ?, 'teaser', 'cat', 'animate', 'model', 'in_progress', 'fp', 1, 1)`,
    ).run(run, CAT);
    db.prepare(
      `INSERT INTO attempts (run_id, address, attempt, workflow_name, fingerprint, request_id, state, started_at)
       VALUES (?, ?, 1, 'teasers', 'fp', ?, 'in_progress', 1)`,
    ).run(run, CAT, `req-${run}`);
  }
  db.close();
  return `${file}.v5`;
}

describe("API origins in a database from before they were recorded (schema 5 → 6)", () => {
  test("runs of apply --emulator become the embedded emulator's; every other run's origin stays unknown", () => {
    const file = schemaFiveDatabase();
    const store = open(file);
    expect(store.getRun("embedded")?.apiOrigin).toBe("emulator");
    expect(store.getRun("plain")?.apiOrigin).toBeUndefined();
    expect(store.getAttempts("embedded")[0]?.apiOrigin).toBe("emulator");
    expect(store.getAttempts("plain")[0]?.apiOrigin).toBeUndefined();
  });

  test("plan's read-only open upgrades a copy in memory and leaves the file exactly as it was", () => {
    const file = schemaFiveDatabase();
    const before = readFileSync(file);
    const store = openSqliteStore(file, { readonly: true, neverWrite: true, secrets: [] });
    try {
      expect(store.getRun("embedded")?.apiOrigin).toBe("emulator");
      expect(store.inFlightAt("teasers", "fp", CAT).map((a) => a.runId)).toEqual(["plain", "embedded"]);
    } finally {
      store.close();
    }
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(new Database(file, { readonly: true }).pragma("user_version", { simple: true })).toBe(5);
    expect(existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0).toBe(0);
  });
});

describe("a run left unfinished is closed by the later run that finished its steps", () => {
  /** A run of `steps` (address → state) at `apiOrigin`, ended with `status` (`running`: never ended). */
  function runWith(
    store: SqliteStore,
    id: string,
    startedAt: number,
    steps: Record<string, StoredStepState>,
    {
      status = "interrupted",
      apiOrigin = "https://api.example",
    }: { status?: string; apiOrigin?: string } = {},
  ): void {
    store.createRun(newRun({ id, startedAt, apiOrigin }));
    store.insertSteps(
      id,
      Object.entries(steps).map(([address, state]) => modelStep(address, { state })),
      startedAt,
    );
    if (status !== "running")
      store.finishRun(id, {
        status: status as "interrupted",
        exitCode: 130,
        finishedAt: startedAt + 1,
        counts: {},
      });
  }

  test("marks the interrupted and died runs whose every unfinished step the new run finished, and no other", () => {
    const store = open(tempDbPath());
    runWith(store, "interrupted", 1_000, { [CAT]: "in_progress", [DOG]: "succeeded" });
    runWith(store, "died", 2_000, { [CAT]: "in_queue", [DOG]: "pending" }, { status: "running" });
    runWith(store, "failed", 2_500, { [CAT]: "failed", [DOG]: "pending" }, { status: "failed" });
    runWith(store, "other-api", 2_600, { [CAT]: "in_progress" }, { apiOrigin: "emulator" });
    runWith(store, "more-left", 2_700, { [CAT]: "in_progress", "teaser/cow/animate": "pending" });
    runWith(store, "new", 3_000, { [CAT]: "succeeded", [DOG]: "reused" }, { status: "running" });

    expect(store.closeRunsFinishedBy("new").sort()).toEqual(["died", "interrupted"]);
    expect(store.getRun("interrupted")?.finishedByRun).toBe("new");
    expect(store.getRun("died")?.finishedByRun).toBe("new");
    // A finished run's outcome is its own; another API's requests are still open there; a
    // step the new run did not finish leaves the run open.
    for (const id of ["failed", "other-api", "more-left", "new"])
      expect(store.getRun(id)?.finishedByRun).toBeUndefined();
    // Once closed, it stays with the run that closed it.
    runWith(store, "newer", 4_000, { [CAT]: "succeeded", [DOG]: "succeeded" }, { status: "running" });
    expect(store.closeRunsFinishedBy("newer")).toEqual([]);
    expect(store.getRun("died")?.finishedByRun).toBe("new");
  });
});
