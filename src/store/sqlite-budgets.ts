/**
 * A run's budget in the SQLite state (port.ts BudgetsPort; migration 10): each change is one
 * transaction, whose writes budget-ledger.ts works out. SQLite serves one process at a time,
 * so this is the same contract as PostgreSQL's, passing the same conformance tests; the
 * engine of one process keeps its budget in memory (engine/run-costs.ts).
 */
import type Database from "better-sqlite3";
import type { BudgetFigures } from "../cost/budget.js";
import {
  decideRelease,
  decideReserve,
  decideSettle,
  type EndOfAttempt,
  type ModelCosts,
  type Reservation,
} from "./budget-ledger.js";
import type { BudgetDecision } from "./port.js";
import type { AttemptKey } from "./types.js";

interface BudgetRow {
  max_micros: number;
  spent_micros: number;
  reserved_micros: number;
  reached: number;
  held: number;
}

function figuresOf(row: BudgetRow): BudgetFigures {
  return {
    maxMicros: row.max_micros,
    spentMicros: row.spent_micros,
    reservedMicros: row.reserved_micros,
    reached: row.reached !== 0,
    held: row.held,
  };
}

function prepare(db: Database.Database) {
  return {
    insertBudget: db.prepare<[string, number]>(`INSERT INTO run_budgets (run_id, max_micros) VALUES (?, ?)`),
    insertModel: db.prepare<[string, string, number]>(
      `INSERT INTO budget_models (run_id, model, estimate_micros) VALUES (?, ?, ?)`,
    ),
    getBudget: db.prepare<[string], BudgetRow>(`SELECT * FROM run_budgets WHERE run_id = ?`),
    getModel: db.prepare<
      [string, string],
      { estimate_micros: number | null; actual_micros: number; actual_count: number }
    >(
      `SELECT estimate_micros, actual_micros, actual_count FROM budget_models WHERE run_id = ? AND model = ?`,
    ),
    getReservation: db.prepare<[string, string, number], Reservation>(
      `SELECT attempt, micros, state FROM budget_reservations WHERE run_id = ? AND address = ? AND attempt = ?`,
    ),
    getEarlierReservation: db.prepare<[string, string, number], Reservation>(
      `SELECT attempt, micros, state FROM budget_reservations WHERE run_id = ? AND address = ? AND attempt < ?
       ORDER BY attempt DESC LIMIT 1`,
    ),
    insertReservation: db.prepare<[string, string, number, number, string]>(
      `INSERT INTO budget_reservations (run_id, address, attempt, micros, state) VALUES (?, ?, ?, ?, ?)`,
    ),
    moveReservation: db.prepare<[string, string, string, number]>(
      `UPDATE budget_reservations SET state = ? WHERE run_id = ? AND address = ? AND attempt = ?`,
    ),
    addToBudget: db.prepare<[number, number, string]>(
      `UPDATE run_budgets SET reserved_micros = reserved_micros + ?, spent_micros = spent_micros + ? WHERE run_id = ?`,
    ),
    reachBudget: db.prepare<[string]>(`UPDATE run_budgets SET reached = 1, held = held + 1 WHERE run_id = ?`),
    addActual: db.prepare<[string, string, number]>(
      `INSERT INTO budget_models (run_id, model, estimate_micros, actual_micros, actual_count)
       VALUES (?, ?, NULL, ?, 1)
       ON CONFLICT (run_id, model) DO UPDATE SET
         actual_micros = actual_micros + excluded.actual_micros, actual_count = actual_count + 1`,
    ),
  };
}

export class SqliteBudgets {
  readonly #db: Database.Database;
  readonly #transaction: <T>(fn: () => T) => T;
  /** Prepared when first used: a state read without upgrading its older schema has no such tables. */
  #statements: ReturnType<typeof prepare> | undefined;

  constructor(db: Database.Database, transaction: <T>(fn: () => T) => T) {
    this.#db = db;
    this.#transaction = transaction;
  }

  get #sql(): ReturnType<typeof prepare> {
    return (this.#statements ??= prepare(this.#db));
  }

  open(runId: string, budget: { maxMicros: number; estimates: Readonly<Record<string, number>> }): void {
    this.#transaction(() => {
      this.#sql.insertBudget.run(runId, budget.maxMicros);
      for (const [model, micros] of Object.entries(budget.estimates))
        this.#sql.insertModel.run(runId, model, micros);
    });
  }

  get(runId: string): BudgetFigures | undefined {
    const row = this.#sql.getBudget.get(runId);
    return row && figuresOf(row);
  }

  reserve(key: AttemptKey, model: string): BudgetDecision {
    return this.#transaction(() => {
      const sql = this.#sql;
      const row = sql.getBudget.get(key.runId);
      if (!row) throw new Error(`reserve: run ${key.runId} has no budget`);
      const existing = sql.getReservation.get(key.runId, key.address, key.attempt);
      const decision = decideReserve(figuresOf(row), existing, this.#model(key.runId, model));
      if (!decision.granted) sql.reachBudget.run(key.runId);
      else if (decision.reserveMicros !== undefined) {
        sql.insertReservation.run(key.runId, key.address, key.attempt, decision.reserveMicros, "reserved");
        sql.addToBudget.run(decision.reserveMicros, 0, key.runId);
      }
      return { granted: decision.granted, ...figuresOf(sql.getBudget.get(key.runId)!) };
    });
  }

  settle(key: AttemptKey, model: string, actualMicros: number | undefined): void {
    this.#transaction(() => {
      const sql = this.#sql;
      if (!sql.getBudget.get(key.runId)) return;
      const [own, earlier] = this.#reservations(key);
      if (!this.#end(key, decideSettle(own, earlier, actualMicros), "settled")) return;
      if (actualMicros !== undefined) sql.addActual.run(key.runId, model, actualMicros);
    });
  }

  release(key: AttemptKey): void {
    this.#transaction(() => {
      if (!this.#sql.getBudget.get(key.runId)) return;
      const [own, earlier] = this.#reservations(key);
      this.#end(key, decideRelease(own, earlier), "released");
    });
  }

  /** The attempt's reservation, and its step's newest one of an earlier attempt. */
  #reservations(key: AttemptKey): [Reservation | undefined, Reservation | undefined] {
    const sql = this.#sql;
    return [
      sql.getReservation.get(key.runId, key.address, key.attempt),
      sql.getEarlierReservation.get(key.runId, key.address, key.attempt),
    ];
  }

  /** Writes an attempt's end (budget-ledger.ts); false when there was nothing to write. */
  #end(key: AttemptKey, end: EndOfAttempt | undefined, state: "settled" | "released"): boolean {
    if (!end) return false;
    const sql = this.#sql;
    if (end.move !== undefined) sql.moveReservation.run(state, key.runId, key.address, end.move);
    if (end.insert) sql.insertReservation.run(key.runId, key.address, key.attempt, 0, state);
    sql.addToBudget.run(end.reservedDelta, end.spentDelta, key.runId);
    return true;
  }

  #model(runId: string, model: string): ModelCosts | undefined {
    const row = this.#sql.getModel.get(runId, model);
    return (
      row && {
        estimateMicros: row.estimate_micros ?? undefined,
        actualMicros: row.actual_micros,
        actualCount: row.actual_count,
      }
    );
  }
}
