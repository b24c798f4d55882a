import type { PriorState } from "./types.js";

/** `--fresh`: earlier runs offer nothing to reuse. */
export const noPriorState: PriorState = {
  findSucceeded: () => undefined,
};
