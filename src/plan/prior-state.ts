import type { PriorState, ReusableStep } from "./types.js";

/** No earlier runs: every fully known model step is submitted. For tests and plans without a store. */
export const emptyPriorState: PriorState = {
  findSucceeded: () => undefined,
};

/** A PriorState over a fixed list (tests, or a store snapshot): the newest match wins. */
export function priorStateOf(
  entries: readonly (ReusableStep & { workflowName: string; fingerprint: string })[],
): PriorState {
  const byKey = new Map<string, ReusableStep>();
  for (const { workflowName, fingerprint, ...step } of entries) {
    const key = `${workflowName}\u0000${fingerprint}`;
    const known = byKey.get(key);
    if (!known || known.finishedAt < step.finishedAt) byKey.set(key, step);
  }
  return { findSucceeded: (workflowName, fingerprint) => byKey.get(`${workflowName}\u0000${fingerprint}`) };
}
