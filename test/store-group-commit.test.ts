/**
 * Group commit (StateStore.setGroupCommit): the writes of one turn of the event loop share
 * one commit, reads on the writing connection see them at once, other connections only once
 * committed, and `afterCommit` / `committed()` tell when that is. Real SQLite files, a second
 * connection as the other process.
 */
import { readFileSync, statSync } from "node:fs";
import { setImmediate as nextTurn } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { makeRedactor } from "../src/store/redact.js";
import { SqliteStore } from "../src/store/index.js";
import { IDLE_CHECKPOINT_MS } from "../src/store/sqlite.js";
import { open, seedRun, spawnStoreChild, tempDbPath } from "./store-helpers.js";

const CAT = "teaser/cat/animate";
const DOG = "teaser/dog/animate";

function seeded(): { writer: SqliteStore; reader: SqliteStore; dbPath: string } {
  const dbPath = tempDbPath();
  const writer = open(dbPath);
  seedRun(writer, {}, [CAT, DOG]);
  return { writer, reader: open(dbPath, { readonly: true }), dbPath };
}

const stateOf = (store: SqliteStore, address: string) => store.getStep("run-1", address)?.state;

describe("group commit", () => {
  test("writes are seen at once on the writing connection, and by another only when the turn ends", async () => {
    const { writer, reader } = seeded();
    writer.setGroupCommit(true);
    writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 });
    writer.updateStep("run-1", DOG, { state: "waiting", updatedAt: 2_000 });

    expect(stateOf(writer, CAT)).toBe("waiting");
    expect(stateOf(reader, CAT)).toBe("pending");
    await nextTurn();
    expect([stateOf(reader, CAT), stateOf(reader, DOG)]).toEqual(["waiting", "waiting"]);
  });

  test("a turn's writes are one commit: the log grows by a few pages, not by a commit per write", async () => {
    const { writer, dbPath } = seeded();
    const walBytes = () => statSync(`${dbPath}-wal`).size;
    const writeMany = () => {
      for (let i = 0; i < 100; i++)
        writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 3_000 + i });
    };

    let before = walBytes();
    writeMany();
    const oneCommitEach = walBytes() - before;

    writer.setGroupCommit(true);
    before = walBytes();
    writeMany();
    await nextTurn();
    const grouped = walBytes() - before;

    // Each commit appends at least the step's page to the log.
    expect(oneCommitEach).toBeGreaterThanOrEqual(100 * 4096);
    expect(grouped).toBeLessThan(oneCommitEach / 20);
    expect(writer.getStep("run-1", CAT)?.updatedAt).toBe(3_099);
  });

  test("afterCommit runs what waits for a turn's writes once they are committed, in order; at once when nothing is pending", async () => {
    const { writer, reader } = seeded();
    const seen: string[] = [];
    writer.setGroupCommit(true);
    writer.afterCommit(() => seen.push("nothing pending"));
    expect(seen).toEqual(["nothing pending"]);

    writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 });
    writer.afterCommit(() => seen.push(`cat ${stateOf(reader, CAT)}`));
    writer.updateStep("run-1", DOG, { state: "waiting", updatedAt: 2_000 });
    writer.afterCommit(() => seen.push(`dog ${stateOf(reader, DOG)}`));
    const committed = writer.committed().then(() => seen.push("committed"));
    expect(seen).toEqual(["nothing pending"]);

    await committed;
    expect(seen).toEqual(["nothing pending", "cat waiting", "dog waiting", "committed"]);
  });

  test("turning group commit off, or closing the store, commits what is pending", () => {
    const { writer, reader, dbPath } = seeded();
    writer.setGroupCommit(true);
    writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 });
    writer.setGroupCommit(false);
    expect(stateOf(reader, CAT)).toBe("waiting");

    // Off, each write commits on its own again.
    writer.updateStep("run-1", CAT, { state: "submitting", updatedAt: 2_100 });
    expect(stateOf(reader, CAT)).toBe("submitting");

    const other = open(dbPath);
    other.setGroupCommit(true);
    other.updateStep("run-1", DOG, { state: "waiting", updatedAt: 2_000 });
    other.close();
    expect(stateOf(reader, DOG)).toBe("waiting");
  });

  test("a transaction inside a group is all or nothing, and its failure undoes only itself", async () => {
    const { writer, reader } = seeded();
    writer.setGroupCommit(true);
    writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 });
    expect(() =>
      writer.transaction(() => {
        writer.updateStep("run-1", DOG, { state: "waiting", updatedAt: 2_000 });
        throw new Error("half-way");
      }),
    ).toThrow("half-way");
    await writer.committed();
    expect([stateOf(reader, CAT), stateOf(reader, DOG)]).toEqual(["waiting", "pending"]);
  });

  test("a write on another connection of this process commits the open group first instead of waiting on its lock", async () => {
    const { writer, reader, dbPath } = seeded();
    // Waiting on the group's lock would fail after 200 ms: this thread is the one that must commit it.
    const other = open(dbPath, { busyTimeoutMs: 200 });
    writer.setGroupCommit(true);
    writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 });
    const seen: string[] = [];
    writer.afterCommit(() => seen.push("cat announced"));

    other.requestCancel("run-1", 2_050);
    seen.push("cancel written");
    expect(stateOf(reader, CAT)).toBe("waiting");
    expect(reader.getRun("run-1")?.cancelRequestedAt).toBe(2_050);
    // Told once the other connection's write is over, not in the middle of it.
    await Promise.resolve();
    expect(seen).toEqual(["cancel written", "cat announced"]);

    // The writer goes on grouping.
    writer.updateStep("run-1", DOG, { state: "waiting", updatedAt: 2_100 });
    expect(stateOf(reader, DOG)).toBe("pending");
    await writer.committed();
    expect(stateOf(reader, DOG)).toBe("waiting");
  });

  test("when SQLite drops the group's transaction, nothing more is written and whoever waits is told", async () => {
    const dbPath = tempDbPath();
    seedRun(open(dbPath), {}, [CAT, DOG]);
    // The store on a connection of the test's own, to do what SQLite does on a full disk or
    // an I/O error: roll the open transaction back.
    const db = new Database(dbPath);
    const writer = new SqliteStore(db, dbPath, makeRedactor([]));
    const reader = open(dbPath, { readonly: true });
    writer.setGroupCommit(true);
    writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 });
    const seen: string[] = [];
    writer.afterCommit(() => seen.push("announced"));
    const committed = writer.committed();
    db.exec("ROLLBACK");

    expect(() => writer.updateStep("run-1", DOG, { state: "waiting", updatedAt: 2_000 })).toThrow(
      /could not commit to the state database .*runflow\.db/,
    );
    await expect(committed).rejects.toThrow(/the run stopped, and its last changes are lost/);
    expect(seen).toEqual([]);
    expect([stateOf(reader, CAT), stateOf(reader, DOG)]).toEqual(["pending", "pending"]);
    expect(() => writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_100 })).toThrow(
      /could not commit/,
    );
    writer.close();
    expect(db.open).toBe(false);
  });

  test("a group whose commit fails rejects what waits on it, and refuses later writes", async () => {
    const dbPath = tempDbPath();
    seedRun(open(dbPath), {}, [CAT]);
    const db = new Database(dbPath);
    const writer = new SqliteStore(db, dbPath, makeRedactor([]));
    writer.setGroupCommit(true);
    writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 });
    const committed = writer.committed();
    db.exec("ROLLBACK");
    // No write notices it this time: the commit at the end of the turn does.
    await expect(committed).rejects.toThrow(/could not commit/);
    expect(() =>
      writer.startAttempt({
        runId: "run-1",
        address: CAT,
        attempt: 1,
        workflowName: "teasers",
        fingerprint: "fp",
        startedAt: 2_100,
      }),
    ).toThrow(/could not commit/);
    writer.close();
  });
});

describe("group commit at the end of the process", () => {
  test("process.exit() with writes pending (a second SIGINT) commits them first", async () => {
    const dbPath = tempDbPath();
    seedRun(open(dbPath), {}, [CAT, DOG]);
    const child = spawnStoreChild(
      dbPath,
      `store.setGroupCommit(true);
       store.updateStep("run-1", args.cat, { state: "in_queue", requestId: "req-cat", updatedAt: 2_000 });
       process.exit(130);`,
      { cat: CAT },
    );
    const result = await child.exited;
    expect(result).toMatchObject({ code: 130, stderr: "" });
    const reader = open(dbPath, { readonly: true });
    expect(reader.getStep("run-1", CAT)).toMatchObject({ state: "in_queue", requestId: "req-cat" });
  });
});

describe("the checkpoint once writes pause", () => {
  // In WAL mode a commit lands in the log (runflow.db-wal); a checkpoint copies its pages
  // into the database file. Read in the file's bytes: the seeded run's workflow name.
  const inDatabaseFile = (dbPath: string, text: string) => readFileSync(dbPath).includes(text);

  beforeEach(() => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] }));
  afterEach(() => vi.useRealTimers());

  test("a pause of IDLE_CHECKPOINT_MS after the last write copies the log into the database file", () => {
    const dbPath = tempDbPath();
    const writer = open(dbPath);
    seedRun(writer, { workflowName: "idle-teasers" }, [CAT]);
    expect(inDatabaseFile(dbPath, "idle-teasers")).toBe(false);

    vi.advanceTimersByTime(IDLE_CHECKPOINT_MS);
    expect(inDatabaseFile(dbPath, "idle-teasers")).toBe(true);
  });

  test("every write puts it off: a run that keeps writing is not checkpointed under its feet", () => {
    const dbPath = tempDbPath();
    const writer = open(dbPath);
    seedRun(writer, { workflowName: "busy-teasers" }, [CAT]);
    for (let i = 0; i < 4; i++) {
      vi.advanceTimersByTime(IDLE_CHECKPOINT_MS - 10);
      writer.updateStep("run-1", CAT, { state: "waiting", updatedAt: 2_000 + i });
    }
    expect(inDatabaseFile(dbPath, "busy-teasers")).toBe(false);

    vi.advanceTimersByTime(IDLE_CHECKPOINT_MS);
    expect(inDatabaseFile(dbPath, "busy-teasers")).toBe(true);
  });
});
