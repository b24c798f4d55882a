/**
 * The composition root: the one place that builds the real adapters and hands them to the
 * use cases (the CLI and library users start here). The engine takes its ports; only this
 * module knows that the state store is SQLite (store/sqlite-state-store.ts).
 */
import {
  applyWorkflow as applyWithPorts,
  type ApplyOutcome,
  type ApplyRequest,
  type ApplyServices,
} from "../engine/apply.js";
import {
  cancelRun as cancelWithPorts,
  type CancelOutcome,
  type CancelRequest,
  type CancelServices,
} from "../engine/cancel.js";
import { retryRun as retryWithPorts, type RetryOutcome, type RetryRequest } from "../engine/retry.js";
import type { StateStoreOpener } from "../store/port.js";
import { openStateStore } from "./open-store.js";

export { openStateStore };

/** Services of a use case, with the state store the default one unless given. */
type WithDefaultStore<T extends { openStore: StateStoreOpener }> = Omit<T, "openStore"> &
  Partial<Pick<T, "openStore">>;

/** `runflow apply`: on the default state store unless `services.openStore` says otherwise. */
export function applyWorkflow(
  request: ApplyRequest,
  services: WithDefaultStore<ApplyServices>,
): Promise<ApplyOutcome> {
  return applyWithPorts(request, { ...services, openStore: services.openStore ?? openStateStore });
}

/** `runflow retry`. */
export function retryRun(
  request: RetryRequest,
  services: WithDefaultStore<ApplyServices>,
): Promise<RetryOutcome> {
  return retryWithPorts(request, { ...services, openStore: services.openStore ?? openStateStore });
}

/** `runflow cancel`. */
export function cancelRun(
  request: CancelRequest,
  services: WithDefaultStore<CancelServices> = {},
): Promise<CancelOutcome> {
  return cancelWithPorts(request, { ...services, openStore: services.openStore ?? openStateStore });
}
