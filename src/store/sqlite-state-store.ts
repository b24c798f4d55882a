/**
 * The SQLite adapter of the state store port (port.ts), over the synchronous database layer
 * of sqlite.ts (SqliteStore, better-sqlite3).
 *
 * Durability is kept here, not by the engine: a writable store runs under group commit
 * (group-commit.ts) for its whole life. A write is applied at once, in call order, inside a
 * transaction every write of the same turn of the event loop joins (so this process reads
 * it at once); the transaction is committed when the turn ends (setImmediate), and the
 * write's promise resolves then — or rejects when that commit failed. One commit for all the
 * steps whose answers arrived together keeps a zero-duration step's cost low (SQLite's
 * commits and the checkpoints they bring were a third of it with one commit per write).
 * A crash loses at most the last turn's writes, none of them announced: every caller waits
 * for its write's promise before it acts on it. Should the process end with writes pending
 * (`process.exit()` on a second SIGINT), an exit hook commits them first (group-commit.ts).
 */
import type { CostTotal } from "../cost/money.js";
import type {
  AttemptsPort,
  BudgetsPort,
  HistoryPort,
  LocksPort,
  WorkersPort,
  OpenStateStoreOptions,
  OutputsPort,
  PriorRunsLookup,
  RunsPort,
  StateStore,
  StepsPort,
} from "./port.js";
import { openSqliteStore, type SqliteStore } from "./sqlite.js";

export class SqliteStateStore implements StateStore {
  /** The synchronous database layer (for tests that seed or inspect the file). */
  readonly database: SqliteStore;
  readonly runs: RunsPort;
  readonly steps: StepsPort;
  readonly attempts: AttemptsPort;
  readonly outputs: OutputsPort;
  readonly locks: LocksPort;
  readonly workers: WorkersPort;
  readonly history: HistoryPort;
  readonly budgets: BudgetsPort;

  constructor(database: SqliteStore) {
    this.database = database;
    const db = database;
    // Every write of a turn shares its commit; the promise of each resolves once it is committed.
    db.setGroupCommit(true);
    // Async functions run synchronously up to their first await: a write is applied at
    // call time, in call order, and its promise resolves once its group is committed.
    const write = async (apply: () => void): Promise<void> => {
      apply();
      await db.committed();
    };
    const writeReturning = async <T>(apply: () => T): Promise<T> => {
      const value = apply();
      await db.committed();
      return value;
    };
    // eslint-disable-next-line @typescript-eslint/require-await -- a thrown error becomes a rejection
    const read = async <T>(query: () => T): Promise<T> => query();

    this.runs = {
      create: (run) => write(() => db.createRun(run)),
      finish: (runId, result) => write(() => db.finishRun(runId, result)),
      get: (runId) => read(() => db.getRun(runId)),
      latest: (workflowName) => read(() => db.latestRun(workflowName)),
      list: (options) => read(() => db.listRuns(options)),
      plan: (runId) => read(() => db.getRunPlan(runId)),
      setPlan: (runId, plan) => write(() => db.setRunPlan(runId, plan)),
      planParts: (runId, fromPart = 0) => read(() => db.getRunPlanParts(runId, fromPart)),
      addPlanPart: (runId, part, steps, stored, createdAt) =>
        write(() =>
          db.transaction(() => {
            db.insertSteps(runId, steps, createdAt);
            db.addRunPlanPart(runId, part, stored);
          }),
        ),
      requestCancel: (runId, at) => write(() => db.requestCancel(runId, at)),
      closeFinishedBy: (runId) => writeReturning(() => db.closeRunsFinishedBy(runId)),
      unfinishedInstances: (runId) => read(() => db.unfinishedInstances(runId)),
    };

    this.steps = {
      insert: (runId, steps, createdAt) => write(() => db.insertSteps(runId, steps, createdAt)),
      update: (runId, address, patch, also) =>
        write(() => {
          if (also?.attempt === undefined && (also?.outputs?.length ?? 0) === 0) {
            db.updateStep(runId, address, patch);
            return;
          }
          db.transaction(() => {
            for (const output of also?.outputs ?? []) db.recordOutput(output);
            if (also?.attempt) db.updateAttempt(also.attempt.key, also.attempt.patch);
            db.updateStep(runId, address, patch);
          });
        }),
      get: (runId, address) => read(() => db.getStep(runId, address)),
      list: (runId, filter) => read(() => db.getSteps(runId, filter)),
      countByState: (runId) => read(() => db.countStepsByState(runId)),
      // One process writes a SQLite state: nobody follows it from elsewhere, so every step.
      changedSince: (runId) => read(() => ({ steps: db.getSteps(runId), cursor: "" })),
    };

    this.attempts = {
      start: (attempt, step) =>
        write(() =>
          db.transaction(() => {
            db.startAttempt(attempt);
            db.updateStep(attempt.runId, attempt.address, step);
          }),
        ),
      recordRequestId: (key, requestId, at, step) =>
        write(() => db.recordRequestId(key, requestId, at, step)),
      update: (key, patch) => write(() => db.updateAttempt(key, patch)),
      claim: (attempt, step, worker) => writeReturning(() => db.claimAttempt(attempt, step, worker)),
      recordClaimedRequestId: (key, worker, requestId, at, step) =>
        writeReturning(() => db.recordClaimedRequestId(key, worker, requestId, at, step)),
      abandon: (key, error, at, step) => writeReturning(() => db.abandonAttempt(key, error, at, step)),
      list: (runId, address) => read(() => db.getAttempts(runId, address)),
    };

    this.workers = {
      beat: (worker) => write(() => db.beatWorker(worker)),
      leave: (name) => write(() => db.leaveWorker(name)),
      list: (since) => read(() => db.listWorkers(since)),
    };

    this.outputs = {
      record: (outputs) =>
        write(() => {
          if (outputs.length === 1) db.recordOutput(outputs[0]!);
          else if (outputs.length > 1)
            db.transaction(() => outputs.forEach((output) => db.recordOutput(output)));
        }),
      list: (runId, address) => read(() => db.getOutputs(runId, address)),
      recordInputCapture: (capture) => write(() => db.recordInputCapture(capture)),
      inputCaptures: (runIds) => read(() => db.getInputCaptures(runIds)),
    };

    this.locks = {
      acquire: (workflowName, holder, options) =>
        writeReturning(() => db.acquireLock(workflowName, holder, options)),
      heartbeat: (workflowName, runId, now) => writeReturning(() => db.heartbeat(workflowName, runId, now)),
      release: (workflowName, runId) => write(() => db.releaseLock(workflowName, runId)),
      get: (workflowName) => read(() => db.getLock(workflowName)),
    };

    this.budgets = {
      open: (runId, budget) => write(() => db.budgets.open(runId, budget)),
      get: (runId) => read(() => db.budgets.get(runId)),
      reserve: (key, model) => writeReturning(() => db.budgets.reserve(key, model)),
      settle: (key, model, actual) => write(() => db.budgets.settle(key, model, actual)),
      release: (key) => write(() => db.budgets.release(key)),
    };

    // SQLite answers the lookup's questions with indexed queries as they come: the database
    // layer is the lookup itself, and sees every write of this process at once.
    const lookup: PriorRunsLookup = db;
    this.history = {
      priorRuns: () => Promise.resolve(lookup),
      typicalDuration: (model, apiOrigin) => read(() => db.typicalDuration(model, apiOrigin)),
      learnedCost: (model, apiOrigin) => read(() => db.learnedCost(model, apiOrigin)),
      runCost: (runId) => read((): CostTotal => db.runCost(runId)),
      stepCosts: (runId) => read(() => db.stepCosts(runId)),
      recordPrice: (price) => write(() => db.recordPrice(price)),
      pricesAt: (apiOrigin) => read(() => db.pricesAt(apiOrigin)),
    };
  }

  /** Commits what is pending (throws when that fails), then closes the connection. */
  // eslint-disable-next-line @typescript-eslint/require-await -- a thrown error becomes a rejection
  async close(): Promise<void> {
    this.database.close();
  }
}

/**
 * Opens the SQLite state store at `path` (`:memory:` for a private one): the composition
 * roots (src/app/) build the real store with it.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- a thrown error becomes a rejection
export async function openSqliteStateStore(
  path: string,
  options: OpenStateStoreOptions = {},
): Promise<SqliteStateStore> {
  return new SqliteStateStore(openSqliteStore(path, options));
}

/** The adapter over a database layer already open (tests seed it first). */
export function sqliteStateStoreOf(database: SqliteStore): SqliteStateStore {
  return new SqliteStateStore(database);
}
