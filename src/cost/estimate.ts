/**
 * What a batch will cost before it runs (SPEC §9 "Estimate"): per model, what one request
 * is expected to cost and on what basis, then per model and in total what the plan submits
 * and what reuse saves.
 *
 * A request's estimate, by the price's unit:
 * - per output: the price × the one output a request makes;
 * - per second: the price × the seconds the model's earlier requests at this API actually
 *   cost (their recorded cost ÷ the price; learned like durations), or, with no history, the
 *   workflow's stated assumption (`budget.assume`), or DEFAULT_ASSUMED_SECONDS, said so;
 * - no price (the API gives none): the workflow's assumed cost per request, or unknown.
 */
import { formatPrice, formatUsd, usdOf } from "./money.js";

/** Seconds of output a per-second model is assumed to bill when nothing better is known. */
export const DEFAULT_ASSUMED_SECONDS = 5;

/** A model's price as the estimate needs it (from the API, or as recorded from it). */
export interface PriceInput {
  micros: number;
  unit: "second" | "output";
  /** When it was read (ms since the epoch). */
  readAt?: number | undefined;
}

/** What the workflow says to assume for a model (`budget.assume.MODEL`). */
export interface CostAssumption {
  /** Seconds of output a request bills, for a per-second price without history. */
  seconds?: number | undefined;
  /** USD micro-dollars a request costs, for a model the API gives no price for. */
  micros?: number | undefined;
}

/** One request of a model: what it is expected to cost, and why. */
export interface RequestEstimate {
  model: string;
  /** Micro-dollars; undefined when unknown (no price, no assumption). */
  micros: number | undefined;
  /** How the figure was reached, in words (`$0.10/second × 5 s (what 3 earlier requests cost)`). */
  basis: string;
  price?: PriceInput | undefined;
}

export function requestEstimate(
  model: string,
  price: PriceInput | undefined,
  learned: { micros: number; requests: number } | undefined,
  assumption: CostAssumption | undefined,
  /** Why there is no price, when there is none. */
  noPrice = "the API gives no price for this model",
): RequestEstimate {
  if (price === undefined) {
    if (assumption?.micros !== undefined) {
      return {
        model,
        micros: assumption.micros,
        basis: `${formatUsd(assumption.micros)} a request (assumed in budget.assume; the API gives no price)`,
      };
    }
    return { model, micros: undefined, basis: `unknown: ${noPrice}` };
  }
  const priced = formatPrice(price.micros, price.unit);
  if (price.unit === "output") {
    return { model, micros: price.micros, basis: `${priced} × 1 output`, price };
  }
  if (learned !== undefined && price.micros > 0) {
    const seconds = learned.micros / price.micros;
    const requests = learned.requests === 1 ? "1 earlier request" : `${learned.requests} earlier requests`;
    return {
      model,
      micros: learned.micros,
      basis: `${priced} × ${secondsText(seconds)} (what ${requests} at this API cost)`,
      price,
    };
  }
  const assumed = assumption?.seconds;
  const seconds = assumed ?? DEFAULT_ASSUMED_SECONDS;
  const why =
    assumed !== undefined ? "assumed in budget.assume" : "assumed: no earlier request of it at this API";
  return {
    model,
    micros: Math.round(price.micros * seconds),
    basis: `${priced} × ${secondsText(seconds)} (${why})`,
    price,
  };
}

function secondsText(seconds: number): string {
  return `${Number(seconds.toFixed(1))} s`;
}

/** What a plan submits of one model, and what it would have cost without reuse. */
export interface ModelEstimate {
  model: string;
  /** Steps sent (to submit, or deferred: decided at run time). */
  submit: number;
  /** Steps taken over from earlier runs: not paid again. */
  reused: number;
  /** Micro-dollars for `submit`; undefined when a request's cost is unknown. */
  micros: number | undefined;
  savedMicros: number | undefined;
  basis: string;
}

export interface CostEstimate {
  models: ModelEstimate[];
  /** Micro-dollars of every model with a known estimate. */
  micros: number;
  savedMicros: number;
  /** Models whose requests have no estimate (and are sent): the total leaves them out. */
  unknownModels: string[];
}

/** Per model and in total, from the count of steps each model submits and reuses. */
export function estimateCost(
  counts: ReadonlyMap<string, { submit: number; reused: number }>,
  perRequest: ReadonlyMap<string, RequestEstimate>,
): CostEstimate {
  const models: ModelEstimate[] = [];
  let micros = 0;
  let savedMicros = 0;
  const unknownModels: string[] = [];
  for (const [model, count] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
    const unit = perRequest.get(model);
    const each = unit?.micros;
    const entry: ModelEstimate = {
      model,
      submit: count.submit,
      reused: count.reused,
      micros: each === undefined ? undefined : each * count.submit,
      savedMicros: each === undefined ? undefined : each * count.reused,
      basis: unit?.basis ?? "unknown: no price read",
    };
    if (entry.micros === undefined) {
      if (count.submit > 0) unknownModels.push(model);
    } else micros += entry.micros;
    savedMicros += entry.savedMicros ?? 0;
    models.push(entry);
  }
  return { models, micros, savedMicros, unknownModels };
}

/** `estimate: $1.20 to spend (12 requests), $0.60 saved by reuse`, then a line per model with its basis. */
export function estimateLines(estimate: CostEstimate): string[] {
  const requests = estimate.models.reduce((sum, model) => sum + model.submit, 0);
  const unknown = estimate.unknownModels.length > 0;
  const total =
    unknown && estimate.micros === 0
      ? "unknown"
      : `${formatUsd(estimate.micros)}${unknown ? " + unknown" : ""}`;
  const lines = [
    `estimate: ${total} to spend (${requests} ${requests === 1 ? "request" : "requests"}), ${formatUsd(estimate.savedMicros)} saved by reuse`,
  ];
  for (const model of estimate.models) {
    const spend = model.micros === undefined ? "unknown" : formatUsd(model.micros);
    const saved = model.reused > 0 ? `, ${model.reused} reused` : "";
    lines.push(`  ${model.model}: ${spend} for ${model.submit} to submit${saved} — ${model.basis}`);
  }
  return lines;
}

/** The estimate in `plan --json`: USD numbers, null where unknown. */
export function estimateToJson(estimate: CostEstimate): Record<string, unknown> {
  return {
    usd: usdOf(estimate.micros),
    saved_usd: usdOf(estimate.savedMicros),
    unknown_models: estimate.unknownModels,
    models: estimate.models.map((model) => ({
      model: model.model,
      submit: model.submit,
      reused: model.reused,
      usd: model.micros === undefined ? null : usdOf(model.micros),
      saved_usd: model.savedMicros === undefined ? null : usdOf(model.savedMicros),
      basis: model.basis,
    })),
  };
}
