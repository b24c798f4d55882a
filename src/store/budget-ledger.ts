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
  /** The attempt of the step it was made for. */
  attempt: number;
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

/**
 * What an attempt's end writes: the reservation that moves (`move`: its attempt, to
 * `settled` or `released`), a row of the attempt's own when it had none (so that the same end
 * told again finds it), and how the budget's sums change. Undefined: nothing to write.
 *
 * `own` is the attempt's reservation; `earlier` the step's newest reservation of an earlier
 * attempt. An attempt without one of its own re-attached to a request: when that request
 * was this run's (an earlier attempt whose process died after recording its id), the earlier
 * attempt's reservation is the one that ends here — never left counted beside what it cost.
 */
export interface EndOfAttempt {
  move: number | undefined;
  insert: boolean;
  reservedDelta: number;
  spentDelta: number;
}

function ending(own: Reservation | undefined, earlier: Reservation | undefined) {
  if (own) return own.state === "reserved" ? { reservation: own, insert: false } : undefined;
  return { reservation: earlier?.state === "reserved" ? earlier : undefined, insert: true };
}

/** settle: the reservation becomes what the request cost (`actualMicros`), or its estimate when the API reported none. */
export function decideSettle(
  own: Reservation | undefined,
  earlier: Reservation | undefined,
  actualMicros: number | undefined,
): EndOfAttempt | undefined {
  const found = ending(own, earlier);
  if (!found) return undefined;
  // A request re-attached from an earlier run reserved nothing here: what it reported is spent all the same.
  const reserved = found.reservation?.micros ?? 0;
  return {
    move: found.reservation?.attempt,
    insert: found.insert,
    reservedDelta: -reserved,
    spentDelta: actualMicros ?? reserved,
  };
}

/** release: nothing was created, the reservation goes back. */
export function decideRelease(
  own: Reservation | undefined,
  earlier: Reservation | undefined,
): EndOfAttempt | undefined {
  const found = ending(own, earlier);
  if (!found?.reservation) return undefined;
  return {
    move: found.reservation.attempt,
    insert: found.insert,
    reservedDelta: -found.reservation.micros,
    spentDelta: 0,
  };
}
