/**
 * What each change to a run's budget kept in the state writes (port.ts BudgetsPort), worked
 * out once for both adapters: they read the rows under their lock, ask here, and write what
 * the answer says. The rule itself is cost/budget.ts's.
 *
 * A reservation belongs to one attempt and moves once: reserved → settled (what it cost is
 * spent) or released (nothing was created). A second settle or release of the same attempt
 * — a redelivered step reporting the same request again — finds it moved and changes
 * nothing, so no cost is ever counted twice.
 */
import { type BudgetFigures, currentEstimate, fitsBudget } from "../cost/budget.js";

export type ReservationState = "reserved" | "settled" | "released";

export interface Reservation {
  micros: number;
  state: ReservationState;
}

/** A model's row of a run's budget: its estimate when the run started, and what its requests cost. */
export interface ModelCosts {
  estimateMicros: number | undefined;
  actualMicros: number;
  actualCount: number;
}

/** reserve: granted with `micros` to reserve (none when the attempt holds one already), or refused. */
export function decideReserve(
  figures: BudgetFigures,
  existing: Reservation | undefined,
  model: ModelCosts | undefined,
): { granted: true; reserveMicros: number | undefined } | { granted: false } {
  // Another delivery of the same attempt reserved it: counted once; only one of them wins the claim.
  if (existing) return { granted: true, reserveMicros: undefined };
  const actual = model && { sum: model.actualMicros, count: model.actualCount };
  const micros = currentEstimate(model?.estimateMicros, actual) ?? 0;
  return fitsBudget(figures, micros) ? { granted: true, reserveMicros: micros } : { granted: false };
}

/** settle: how the budget's sums move, and whether a row is to be written; undefined when it was settled or released already. */
export function decideSettle(
  existing: Reservation | undefined,
  actualMicros: number | undefined,
): { reservedDelta: number; spentDelta: number; insert: boolean } | undefined {
  if (existing && existing.state !== "reserved") return undefined;
  // A re-attached request reserved nothing: what it reported is spent all the same.
  const reserved = existing?.micros ?? 0;
  return { reservedDelta: -reserved, spentDelta: actualMicros ?? reserved, insert: existing === undefined };
}

/** release: the reservation given back; undefined when there is none to give back. */
export function decideRelease(existing: Reservation | undefined): { reservedDelta: number } | undefined {
  if (!existing || existing.state !== "reserved") return undefined;
  return { reservedDelta: -existing.micros };
}
