/** The model layer: which models runflow knows, and whether an input suits one (SPEC §4, §8). */
export type {
  InputIssue,
  MediaFacts,
  MediaRuleName,
  MediaValidation,
  ModelEntry,
  ModelInputProperty,
  ModelInputSchema,
} from "./types.js";
export { MEDIA_RULES } from "./types.js";
export { MediaUnreachableError, ModelSchemaError, UnknownModelError } from "./errors.js";
export { catalogShapeOf, modelFileName, parseModelEntry } from "./entry.js";
export {
  builtinModelsDir,
  loadModelRegistry,
  requireModel,
  type LoadModelRegistryOptions,
  type ModelRegistry,
} from "./registry.js";
export {
  validateModelInput,
  type ModelInputValidation,
  type ValidateModelInputOptions,
} from "./validate-input.js";
export {
  BYTES_PER_MB,
  checkMediaUrl,
  evaluateMediaRules,
  factsNeededBy,
  isLoopbackHost,
  mediaRulesOf,
  mediaUrlFieldsOf,
} from "./media-rules.js";
export { formatInputIssue } from "./format-issue.js";
