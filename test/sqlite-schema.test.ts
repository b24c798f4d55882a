/**
 * A new state database is created from the schema the migrations build
 * (src/store/sqlite-schema.ts, written by scripts/write-sqlite-schema.js) in one statement
 * batch; an existing one is still brought up by its pending migrations. Real SQLite files.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, test, vi } from "vitest";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate, migrateStepByStep } from "../src/store/migrations.js";
import { SQLITE_SCHEMA } from "../src/store/sqlite-schema.js";
import { open, tempDir } from "./store-helpers.js";

interface Schema {
  userVersion: unknown;
  objects: unknown[];
  columns: Record<string, unknown[]>;
}

/** What SQLite knows of a database's schema: every object with its SQL, every table's columns. */
function schemaOf(file: string): Schema {
  const db = new Database(file, { readonly: true });
  try {
    const objects = db
      .prepare<[], { type: string; name: string; tbl_name: string; sql: string | null }>(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
      )
      .all();
    const columns: Record<string, unknown[]> = {};
    for (const { name } of objects.filter((o) => o.type === "table")) {
      columns[name] = db.prepare(`SELECT * FROM pragma_table_xinfo(?)`).all(name);
    }
    return { userVersion: db.pragma("user_version", { simple: true }), objects, columns };
  } finally {
    db.close();
  }
}

function databaseFile(name: string): string {
  return path.join(tempDir(), name);
}

/** A database that lived through the releases up to `version`: each migration committed on its own. */
function migratedUpTo(version: number): string {
  const file = databaseFile(`v${version}.db`);
  const db = new Database(file);
  try {
    migrateStepByStep(
      db,
      MIGRATIONS.filter((m) => m.version <= version),
    );
  } finally {
    db.close();
  }
  return file;
}

describe("the SQLite schema of a new database", () => {
  test("is of the migrations' latest version (else run scripts/write-sqlite-schema.js)", () => {
    expect(SQLITE_SCHEMA.version).toBe(LATEST_SCHEMA_VERSION);
  });

  test("a database created fresh and one migrated step by step have the same schema and user_version", () => {
    const fresh = databaseFile("fresh.db");
    open(fresh).close();
    const stepByStep = migratedUpTo(LATEST_SCHEMA_VERSION);

    const created = schemaOf(fresh);
    expect(created.userVersion).toBe(LATEST_SCHEMA_VERSION);
    expect(created.objects.length).toBeGreaterThan(10);
    // Byte for byte, sql included: `sqlite-schema.ts` is what SQLite stored after the migrations.
    expect(created).toEqual(schemaOf(stepByStep));
  });

  test("is created by one statement batch, not by replaying each migration", () => {
    const db = new Database(databaseFile("spied.db"));
    try {
      const exec = vi.spyOn(db, "exec");
      migrate(db, "spied.db");
      expect(exec).toHaveBeenCalledTimes(1);
      expect(exec).toHaveBeenCalledWith(SQLITE_SCHEMA.sql);
      expect(db.pragma("user_version", { simple: true })).toBe(LATEST_SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  test("a database of every earlier version is brought up by its pending migrations to the same schema", () => {
    const expected = schemaOf(migratedUpTo(LATEST_SCHEMA_VERSION));
    for (let version = 1; version < LATEST_SCHEMA_VERSION; version++) {
      const file = migratedUpTo(version);
      const db = new Database(file);
      try {
        const exec = vi.spyOn(db, "exec");
        migrate(db, file);
        // Only the missing migrations ran, each by its own SQL.
        expect(exec.mock.calls.map(([sql]) => sql)).toEqual(
          MIGRATIONS.filter((m) => m.version > version).map((m) => m.sql),
        );
      } finally {
        db.close();
      }
      expect(schemaOf(file), `from version ${version}`).toEqual(expected);
    }
  });
});
