/**
 * The composition root: the one place that builds the real adapters (app/ports.ts) and
 * hands them to the use cases (engine/apply.ts, retry.ts, cancel.ts). The CLI and library
 * users start here. It fills in where a use case runs (`cwd`, `env`: this process's unless
 * given) — the engine reads neither itself — and uses whatever the caller brought instead
 * of a real adapter: its own `StateStore`, its own `EngineApi`. `retry` and `cancel` are
 * imported when called: apply's start does not load them (docs/decisions.md "Start-up").
 */
import { applyWorkflow as applyWithPorts, type ApplyOutcome, type ApplyRequest } from "../engine/apply.js";
import type { CancelOutcome, CancelRequest } from "../engine/cancel.js";
import type { RetryOutcome, RetryRequest } from "../engine/retry.js";
import type { Placed } from "../engine/use-case-ports.js";
import { openStateStore } from "./open-store.js";
import { cancelPorts, runPorts, type ApplyServices, type CancelServices } from "./ports.js";

export { openStateStore };
export type { ApplyServices, CancelServices };

/** The request with its place: the caller's, else this process's folder and environment. */
function placed<Request extends { cwd?: string | undefined; env?: NodeJS.ProcessEnv | undefined }>(
  request: Request,
): Placed<Request> {
  return { ...request, cwd: request.cwd ?? process.cwd(), env: request.env ?? process.env };
}

/** `runflow apply`: on the default state store unless `services` brings another. */
export function applyWorkflow(request: ApplyRequest, services: ApplyServices): Promise<ApplyOutcome> {
  const at = placed(request);
  return applyWithPorts(at, runPorts(at, services));
}

/** `runflow retry`. */
export async function retryRun(request: RetryRequest, services: ApplyServices): Promise<RetryOutcome> {
  const at = placed(request);
  const { retryRun: retryWithPorts } = await import("../engine/retry.js");
  return retryWithPorts(at, runPorts(at, services));
}

/** `runflow cancel`. */
export async function cancelRun(
  request: CancelRequest,
  services: CancelServices = {},
): Promise<CancelOutcome> {
  const at = placed(request);
  const { cancelRun: cancelWithPorts } = await import("../engine/cancel.js");
  return cancelWithPorts(at, cancelPorts(at, services));
}
