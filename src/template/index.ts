/** Templates `${{ path }}` (SPEC §4): parsing and pure, eval-free resolution. */
export {
  escapeTemplateText,
  formatPath,
  hasTemplate,
  parseTemplate,
  parseTemplateCached,
  TemplateSyntaxError,
  type ParsedTemplate,
  type PathSegment,
  type TemplatePart,
  type TemplateRef,
} from "./parse.js";
export {
  asText,
  deferredFields,
  forEachTemplateString,
  readsRoots,
  referencedSteps,
  resolveKnown,
  resolveValue,
  STEP_RESULT_FIELDS,
  TEMPLATE_ROOTS,
  TemplateResolutionError,
  templateRefsIn,
  TOKEN_VARIABLES,
  type PartialResolution,
  type StepResultView,
  type TemplateContext,
  type TemplateRoot,
} from "./resolve.js";
export { setOwn } from "./data.js";
