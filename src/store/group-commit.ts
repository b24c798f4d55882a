/**
 * Group commit on one SQLite connection (SqliteStore.setGroupCommit; the port's SQLite adapter keeps it on). While on, the first
 * write opens a transaction, every later write joins it, and it is committed when the turn
 * of the event loop ends (setImmediate: after the turn's I/O callbacks). Each commit appends
 * every page it changed to the log and brings the log closer to a checkpoint (with its
 * fsyncs), so one commit for all the steps whose answers arrived together costs much less
 * than one per write.
 *
 * Two hazards come with an open write transaction, and both are handled here:
 * - the process may end with writes pending: a second SIGINT calls process.exit(), which
 *   skips every `finally`; an `exit` listener commits them;
 * - another connection of this process that writes would wait on a lock only this thread
 *   can release (better-sqlite3 waits synchronously): a deadlock until its busy timeout. So a
 *   write on any connection first commits the groups open on the others.
 */
import type Database from "better-sqlite3";

type Waiter = (failure?: Error) => void;

/** The groups open in this process, on any connection. */
const openGroups = new Set<GroupCommit>();

/** Commits every group open in this process (before a write on another connection, or a migration). */
export function commitOpenGroups(except?: GroupCommit): void {
  for (const group of openGroups) if (group !== except) group.commitForAnotherConnection();
}

export class GroupCommit {
  readonly #db: Database.Database;
  readonly #begin: Database.Statement;
  readonly #commit: Database.Statement;
  readonly #commitFailed: (cause: unknown) => Error;
  #on = false;
  /** A transaction of grouped writes is open, not yet committed. */
  #open = false;
  /** Committed for another connection; those waiting are told in a microtask. */
  #telling = false;
  #waiters: Waiter[] = [];
  /** Why a group failed to commit: every later write refuses with it. */
  #failure: Error | undefined;

  constructor(db: Database.Database, commitFailed: (cause: unknown) => Error) {
    this.#db = db;
    this.#begin = db.prepare("BEGIN IMMEDIATE");
    this.#commit = db.prepare("COMMIT");
    this.#commitFailed = commitFailed;
  }

  turn(on: boolean): void {
    if (!on) this.commitPending();
    if (on === this.#on) return;
    this.#on = on;
    if (on) process.on("exit", this.#commitBeforeExit);
    else process.off("exit", this.#commitBeforeExit);
  }

  /** Called before every write on this connection. */
  beforeWrite(): void {
    if (this.#failure) throw this.#failure;
    commitOpenGroups(this);
    if (this.#open) {
      // SQLite rolls a transaction back by itself on some errors (disk full, I/O): the
      // group's earlier writes are gone, and this one must not be committed alone.
      if (!this.#db.inTransaction) this.#fail(new Error("SQLite rolled the transaction back"));
      return;
    }
    if (!this.#on) return;
    this.#begin.run();
    this.#open = true;
    openGroups.add(this);
    setImmediate(() => {
      try {
        this.commitPending();
      } catch {
        // Kept in #failure: the next write, or whoever waits on committed(), reports it.
      }
    });
  }

  afterCommit(fn: () => void): void {
    if (this.#settled()) fn();
    else this.#waiters.push((failure) => failure === undefined && fn());
  }

  committed(): Promise<void> {
    if (this.#settled()) return this.#failure ? Promise.reject(this.#failure) : Promise.resolve();
    return new Promise((resolve, reject) =>
      this.#waiters.push((failure) => (failure ? reject(failure) : resolve())),
    );
  }

  commitPending(): void {
    if (this.#failure) throw this.#failure;
    const failure = this.#commitNow();
    this.#tell();
    if (failure) throw failure;
  }

  /** Commits now; those waiting are told once the other connection's write is done. */
  commitForAnotherConnection(): void {
    this.#commitNow();
    if (this.#telling) return;
    this.#telling = true;
    queueMicrotask(() => {
      this.#telling = false;
      if (!this.#open) this.#tell();
    });
  }

  /** Commits what is pending (unless a commit failed already) and turns grouping off. */
  close(): void {
    try {
      if (!this.#failure) this.commitPending();
    } finally {
      this.#on = false;
      this.#open = false;
      openGroups.delete(this);
      process.off("exit", this.#commitBeforeExit);
    }
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Nothing written is waiting for its commit, nor anyone for being told of it. */
  #settled(): boolean {
    return !this.#open && !this.#telling;
  }

  /** Commits the open group, if any; returns why that failed. */
  #commitNow(): Error | undefined {
    if (!this.#open) return undefined;
    this.#open = false;
    openGroups.delete(this);
    try {
      this.#commit.run();
      return undefined;
    } catch (error) {
      this.#failure = this.#commitFailed(error);
      if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
      return this.#failure;
    }
  }

  #tell(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter(this.#failure);
  }

  #fail(cause: Error): never {
    this.#open = false;
    openGroups.delete(this);
    this.#failure = this.#commitFailed(cause);
    this.#tell();
    throw this.#failure;
  }

  readonly #commitBeforeExit = (): void => {
    try {
      if (this.#db.open) this.commitPending();
    } catch {
      // The process is ending: the next apply finds the database as the last commit left it.
    }
  };
}
