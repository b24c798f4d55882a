/**
 * The estimate `runflow plan` shows (SPEC §9): what the plan submits per model — `submit`
 * and `deferred` steps (deferred ones are decided at run time and counted as sent) — at each
 * model's estimate per request, and what its reused steps save. Re-attached steps were paid
 * for by the run that sent them; steps held as unknown are not sent.
 */
import { estimateCost, type CostEstimate, type RequestEstimate } from "../cost/estimate.js";
import type { Plan } from "./types.js";

/** Steps each model submits and reuses in the plan. */
export function planModelUse(plan: Plan): Map<string, { submit: number; reused: number }> {
  const counts = new Map<string, { submit: number; reused: number }>();
  for (const step of plan.steps) {
    if (step.kind !== "model" || step.model === undefined) continue;
    const count = counts.get(step.model) ?? { submit: 0, reused: 0 };
    if (step.decision === "submit" || step.decision === "deferred") count.submit += 1;
    else if (step.decision === "reuse") count.reused += 1;
    counts.set(step.model, count);
  }
  return counts;
}

export function planEstimate(plan: Plan, perRequest: ReadonlyMap<string, RequestEstimate>): CostEstimate {
  return estimateCost(planModelUse(plan), perRequest);
}
