/**
 * Money as runflow keeps it: whole micro-dollars (1 USD = 1,000,000), so sums over thousands
 * of requests never drift the way sums of floats do. Printed to the cent; a cost the API did
 * not report is `unknown`, never $0 (SPEC §9).
 */
import { groupDigits } from "../util/digit-groups.js";

/** Micro-dollars in one US dollar. */
export const MICROS_PER_USD = 1_000_000;

/** The API's USD number (`0.5`, `0.0125`) as micro-dollars; undefined when it is not a usable amount. */
export function microsFromUsd(usd: unknown): number | undefined {
  if (typeof usd !== "number" || !Number.isFinite(usd) || usd < 0) return undefined;
  return Math.round(usd * MICROS_PER_USD);
}

/** `$1.23`: to the nearest cent (a non-zero amount under half a cent reads `<$0.01`). */
export function formatUsd(micros: number): string {
  if (micros > 0 && micros < 5_000) return "<$0.01";
  const cents = Math.round(micros / 10_000);
  const dollars = Math.floor(cents / 100);
  return `$${groupDigits(dollars)}.${String(cents % 100).padStart(2, "0")}`;
}

/** The amount in USD for JSON: micro-dollars exactly, as a number (`1.234567`). */
export function usdOf(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** A price with its unit, as exact as it was given: `$0.10/second`, `$0.0125/output`. */
export function formatPrice(micros: number, unit: string): string {
  const [whole = "0", fraction = ""] = (micros / MICROS_PER_USD).toFixed(6).split(".");
  const digits = fraction.replace(/0+$/, "").padEnd(2, "0");
  return `$${whole}.${digits}/${unit}`;
}

/**
 * What something cost: the sum of the costs reported, and how many billed requests reported
 * none. Shown as `$1.23`, `$1.23 + unknown` or `unknown`; `none` when nothing was billed.
 */
export interface CostTotal {
  micros: number;
  /** Requests that may be billed but whose cost the API did not report. */
  unknown: number;
  /** Requests whose cost is counted in `micros`. */
  known: number;
}

export const NO_COST: Readonly<CostTotal> = Object.freeze({ micros: 0, unknown: 0, known: 0 });

export function addCost(a: CostTotal, b: CostTotal): CostTotal {
  return { micros: a.micros + b.micros, unknown: a.unknown + b.unknown, known: a.known + b.known };
}

/** `$1.23`, `$1.23 + unknown`, `unknown`, or `—` when nothing was billed. */
export function formatCost(cost: CostTotal | undefined): string {
  if (!cost || (cost.known === 0 && cost.unknown === 0)) return "—";
  if (cost.known === 0) return "unknown";
  return cost.unknown > 0 ? `${formatUsd(cost.micros)} + unknown` : formatUsd(cost.micros);
}

/** For `--json` and NDJSON: `{usd, unknown}`, usd null when no cost at all was reported. */
export function costToJson(cost: CostTotal): { usd: number | null; unknown: number } {
  return { usd: cost.known === 0 && cost.unknown > 0 ? null : usdOf(cost.micros), unknown: cost.unknown };
}

/** `--max-cost 12.50` / `budget.max_cost`: a positive number of USD, as micro-dollars; undefined when not one. */
export function parseUsd(text: string): number | undefined {
  const trimmed = text.trim().replace(/^\$/, "");
  if (!/^\d+(\.\d+)?$/.test(trimmed)) return undefined;
  return microsFromUsd(Number(trimmed));
}
