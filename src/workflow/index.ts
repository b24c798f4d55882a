/** Workflow files (SPEC §4): load, validate, expand. */
export type {
  DurationText,
  ForEachFile,
  Job,
  JobFile,
  JobInstance,
  ModelStep,
  ModelStepFile,
  PollPolicy,
  RetryPolicy,
  RunStep,
  RunStepFile,
  Step,
  StepFile,
  Workflow,
  WorkflowFile,
} from "./types.js";
export { checkWorkflow, loadWorkflow, type LoadWorkflowOptions, type WorkflowCheck } from "./load.js";
export { PLACEHOLDER_RUN, type StaticMediaInput } from "./instance-checks.js";
export { describeItem, expandInstances, instanceKeyProblem, type ItemsKind } from "./expand.js";
export { matrixItems, parseCsvItems, parseJsonlItems, type SourcedItem } from "./items.js";
export { BUILTIN_DEFAULTS } from "./normalize.js";
export { WORKFLOW_RULES, type WorkflowRule } from "./rules.js";
export { workflowSchema, workflowSchemaPath } from "./schema.js";
export { MAX_ALIAS_COUNT } from "./source.js";
export { parseVarOverrides } from "./var-overrides.js";
