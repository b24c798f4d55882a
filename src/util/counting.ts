/** How counts are written in every message: `1,234`, `1 step`, `2 steps`. */
import { groupDigits } from "./digit-groups.js";

/** `1,234`: counts stay readable at 10,000 steps. */
export function formatCount(n: number): string {
  return groupDigits(Math.max(0, n));
}

/** `1 step`, `2 steps`, `1,000 instances`. */
export function countOf(count: number, noun: string): string {
  return `${formatCount(count)} ${count === 1 ? noun : `${noun}s`}`;
}
