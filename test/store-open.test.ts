import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, test } from "vitest";
import { ExitCode } from "../src/errors.js";
import { migrate, schemaVersion, type Migration } from "../src/store/migrations.js";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, openSqliteStore, StateStoreError } from "../src/store/index.js";
import { newRun, open, tempDbPath, tempDir } from "./store-helpers.js";

function pragma(dbPath: string, name: string): unknown {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.pragma(name, { simple: true });
  } finally {
    db.close();
  }
}

function tableNames(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db
      .prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .all()
      .map((r) => r.name);
  } finally {
    db.close();
  }
}

describe("opening the state database", () => {
  test("creates the parent folder and the full schema from nothing, in WAL mode", () => {
    const dbPath = tempDbPath();
    expect(existsSync(path.dirname(dbPath))).toBe(false);
    open(dbPath).close();

    expect(tableNames(dbPath)).toEqual([
      "attempts",
      "budget_models",
      "budget_reservations",
      "input_captures",
      "locks",
      "model_prices",
      "outputs",
      "run_budgets",
      "run_plan_parts",
      "runs",
      "steps",
      "workers",
    ]);
    expect(pragma(dbPath, "user_version")).toBe(LATEST_SCHEMA_VERSION);
    expect(pragma(dbPath, "journal_mode")).toBe("wal");
  });

  test("reopening keeps the data and applies nothing twice", () => {
    const dbPath = tempDbPath();
    open(dbPath).createRun(newRun());
    const again = open(dbPath);
    const third = open(dbPath);

    expect(again.getRun("run-1")?.workflowName).toBe("teasers");
    expect(third.listRuns({ limit: 10 })).toHaveLength(1);
    expect(pragma(dbPath, "user_version")).toBe(LATEST_SCHEMA_VERSION);
  });

  test("refuses a database written by a newer runflow, saying which schemas and what to do", () => {
    const dbPath = tempDbPath();
    open(dbPath).close();
    const db = new Database(dbPath);
    db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 6}`);
    db.close();

    const attempt = () => openSqliteStore(dbPath);
    expect(attempt).toThrow(StateStoreError);
    expect(attempt).toThrow(
      `${dbPath} was written by a newer runflow (schema ${LATEST_SCHEMA_VERSION + 6}, this one knows ${LATEST_SCHEMA_VERSION}): upgrade runflow or use another --state`,
    );
    expect(() => openSqliteStore(dbPath, { readonly: true })).toThrow(/written by a newer runflow/);
  });

  test("refuses a file that is not a database with a clear error and leaves it untouched", () => {
    const dbPath = path.join(tempDir(), "notes.txt");
    const text = "these are my notes, not a database\n".repeat(200);
    writeFileSync(dbPath, text);

    let error: unknown;
    try {
      openSqliteStore(dbPath);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StateStoreError);
    expect((error as StateStoreError).message).toBe(`${dbPath} is not a runflow state database`);
    expect((error as StateStoreError).exitCode).toBe(ExitCode.invalid);
    expect((error as StateStoreError).hint).toMatch(/--state/);
  });

  test("reports a path it cannot open (a folder) as a state error, not a crash", () => {
    const dir = path.join(tempDir(), "a-folder.db");
    mkdirSync(dir);
    expect(() => openSqliteStore(dir)).toThrow(StateStoreError);
    expect(() => openSqliteStore(dir)).toThrow(`the state database ${dir} is a folder, not a file`);
  });

  test("read-only opening of a missing database says nothing has run yet and creates nothing", () => {
    const dbPath = tempDbPath();
    expect(() => openSqliteStore(dbPath, { readonly: true })).toThrow(/nothing has run yet/);
    expect(existsSync(dbPath)).toBe(false);
  });

  test("read-only opening reads what a writer wrote and cannot write", () => {
    const dbPath = tempDbPath();
    open(dbPath).createRun(newRun());
    const reader = open(dbPath, { readonly: true });

    expect(reader.readonly).toBe(true);
    expect(reader.getRun("run-1")?.id).toBe("run-1");
    expect(() => reader.createRun(newRun({ id: "run-2" }))).toThrow(/readonly/);
  });

  test("read-only opening upgrades an older database first", () => {
    const dbPath = tempDbPath();
    mkdirSync(path.dirname(dbPath), { recursive: true });
    new Database(dbPath).close();
    expect(pragma(dbPath, "user_version")).toBe(0);

    const reader = open(dbPath, { readonly: true });
    expect(reader.listRuns({ limit: 5 })).toEqual([]);
    expect(pragma(dbPath, "user_version")).toBe(LATEST_SCHEMA_VERSION);
  });
});

describe("migrations", () => {
  const steps: Migration[] = [
    { version: 1, name: "first", sql: "CREATE TABLE a (x INTEGER);" },
    { version: 2, name: "second", sql: "ALTER TABLE a ADD COLUMN y TEXT;" },
  ];

  test("are numbered from 1 without gaps, so append-only history stays readable", () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(LATEST_SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  test("apply in order up to the newest, and only the missing ones on a later run", () => {
    const db = new Database(":memory:");
    migrate(db, "mem", steps.slice(0, 1));
    expect(schemaVersion(db)).toBe(1);
    migrate(db, "mem", steps);
    migrate(db, "mem", steps);
    expect(schemaVersion(db)).toBe(2);
    expect(db.prepare("SELECT x, y FROM a").all()).toEqual([]);
    db.close();
  });

  test("the pending migrations are applied in one transaction: all of them or none", () => {
    // A new database is created in one commit (apply's start); a failure in the last
    // pending migration leaves the earlier ones of the same opening unapplied too.
    const db = new Database(":memory:");
    const broken: Migration = { version: 3, name: "broken", sql: "CREATE TABLE a (x);" };
    expect(() => migrate(db, "mem", [...steps, broken])).toThrow(/already exists/);
    expect(schemaVersion(db)).toBe(0);
    expect(db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'a'`).get()).toEqual({ n: 0 });
    migrate(db, "mem", steps);
    expect(schemaVersion(db)).toBe(2);
    db.close();
  });

  test("a migration that fails leaves the schema and version as they were", () => {
    const db = new Database(":memory:");
    const broken: Migration = { version: 2, name: "broken", sql: "CREATE TABLE b (z); CREATE TABLE a (x);" };
    migrate(db, "mem", steps.slice(0, 1));
    expect(() => migrate(db, "mem", [steps[0]!, broken])).toThrow(/already exists/);
    expect(schemaVersion(db)).toBe(1);
    expect(db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'b'`).get()).toEqual({ n: 0 });
    db.close();
  });
});
