// Writes src/store/sqlite-schema.ts: the SQLite schema the numbered migrations
// (src/store/migrations.ts) build, as SQLite itself stores it (sqlite_master), so that a new
// database is created in one statement batch instead of replaying each migration
// (docs/decisions.md "Start-up, sixth pass"). Run after a migration is added:
//   npm run build && node scripts/write-sqlite-schema.js
// test/sqlite-schema.test.ts fails until the file matches the migrations.
import { writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath, URL } from "node:url";
import Database from "better-sqlite3";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrateStepByStep } from "../dist/store/migrations.js";

const db = new Database(":memory:");
migrateStepByStep(db, MIGRATIONS);
// In creation order; SQLite's own indexes (of PRIMARY KEY and UNIQUE, no sql) come with their tables.
const statements = db
  .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
  .pluck()
  .all()
  .map((sql) => `${sql};`);
db.close();

const sql = statements.join("\n");
if (/[`\\]|\$\{/.test(sql)) throw new Error("the schema holds a character a template literal would change");

const target = fileURLToPath(new URL("../src/store/sqlite-schema.ts", import.meta.url));
writeFileSync(
  target,
  `// Written by scripts/write-sqlite-schema.js from the migrations (src/store/migrations.ts); do not
// edit: add a migration, then run \`npm run build && node scripts/write-sqlite-schema.js\`.

/**
 * The schema the migrations up to \`version\` build, as SQLite stores it: a new database is
 * created from it in one statement batch instead of replaying each migration (a migration's
 * ALTER TABLE makes SQLite parse the whole schema again). test/sqlite-schema.test.ts checks
 * that a database created from it and one migrated step by step have the same schema.
 */
export const SQLITE_SCHEMA = {
  version: ${LATEST_SCHEMA_VERSION},
  sql: \`
${sql}
\`,
} as const;
`,
);
process.stdout.write(
  `wrote ${target} (schema version ${LATEST_SCHEMA_VERSION}, ${statements.length} statements)\n`,
);
