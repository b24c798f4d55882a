/** Planning a run (SPEC §5): decisions, request bodies and fingerprints, before anything runs. */
export type {
  Plan,
  PlanCounts,
  PlannedStep,
  PlanOptions,
  PriorState,
  ReusableStep,
  ReuseReference,
  StepDecision,
  UnfinishedRequest,
} from "./types.js";
export { fingerprintModelStep, fingerprintRunStep } from "./fingerprint.js";
export {
  countDecisions,
  emptyCounts,
  planInstances,
  planRun,
  planTotals,
  planWorkflow,
  runDate,
  selectSteps,
  unfinishedDecision,
  type PlannedInstance,
} from "./plan.js";
export { emptyPriorState, priorStateOf } from "./prior-state.js";
