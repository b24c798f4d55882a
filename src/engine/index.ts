/** The engine (SPEC §4–§5): executes plans durably; apply, retry and cancel as use cases. */
export { applyWorkflow, DEFAULT_STATE_PATH } from "./apply.js";
export { newRunId, runLocked, type LockedOutcome, type LockedRun } from "./locked-run.js";
export { closeStore, openStoreAt, stateLocation } from "./store-session.js";
export type { ApiPort, ApiTarget, CancelPorts, Placed, RunPorts, UseCasePlace } from "./use-case-ports.js";
export { commonFolder } from "./paths.js";
export { decodePlan, encodePlan, isStoredPlan, readStoredPlan, type StoredPlan } from "./stored-plan.js";
export type { ApplyOutcome, ApplyRequest } from "./apply.js";
export { cancelRun, type CancelOutcome, type CancelRequest } from "./cancel.js";
export type {
  DownloadFunction,
  EngineApi,
  EngineDeps,
  ExecuteOptions,
  ProcessOutcome,
  ProcessRequest,
  ProcessRunner,
} from "./deps.js";
export type {
  DispatchedRun,
  Dispatcher,
  DispatcherFactory,
  ProcessSlots,
  ReadyStep,
  RequestSlots,
} from "./dispatcher.js";
export { InProcessDispatcher, inProcessDispatcher } from "./in-process-dispatcher.js";
export { EventBus } from "./events.js";
export type {
  RunEvent,
  RunEventListener,
  RunFinishedEvent,
  RunNoticeEvent,
  RunStartedEvent,
  RunStatus,
  StepEvent,
} from "./events.js";
export { DEFAULT_CACHE_TTL_MS, executePlan, judgeRun, type ExecutionResult } from "./executor.js";
export { findRun } from "./find-run.js";
export { retryPlan, retryRun, type RetryOutcome, type RetryRequest } from "./retry.js";
export { isStopSignal, RunControl, StopSignal, type StopReason } from "./run-control.js";
export { beginRun, endRun, type RunMeta } from "./run-lifecycle.js";
export { handleShutdownSignals, type ShutdownOptions } from "./shutdown.js";
export {
  canTransition,
  DISPLAY_GROUP,
  isSuccess,
  isTerminal,
  RETRYABLE_STATES,
  StepState,
  TERMINAL_STATES,
} from "./states.js";
export { DEFAULT_LOCK_TIMING, type LockTiming } from "./workflow-lock.js";
