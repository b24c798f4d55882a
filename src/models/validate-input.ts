/**
 * Static validation of a model input against its schema (SPEC §4 "Model inputs"): required
 * fields, types, enum, maxLength and the rest of JSON Schema via ajv, unknown fields, media
 * URL schemes, and defaults filled in. Media rules need the network: see api/media-probe.ts.
 */
import type { ErrorObject, ValidateFunction } from "ajv";
import { closest, distance } from "fastest-levenshtein";
import { validatorOf } from "../util/validators.js";
import { ModelSchemaError } from "./errors.js";
import { checkMediaUrl, mediaUrlFieldsOf } from "./media-rules.js";
import type { InputIssue, ModelEntry } from "./types.js";

export interface ValidateModelInputOptions {
  /**
   * Fields whose value is only known at run time (an earlier step's output): their checks
   * are skipped and they are not reported missing; their values are passed through.
   */
  deferred?: ReadonlySet<string>;
}

export interface ModelInputValidation {
  /** The input with defaults filled in (a copy: the caller's object is never changed). */
  value: Record<string, unknown>;
  /** Every problem found; empty when the input may be submitted (media rules aside). */
  issues: InputIssue[];
}

const compiled = new WeakMap<ModelEntry, ValidateFunction>();

function validatorFor(entry: ModelEntry): ValidateFunction {
  let validate = compiled.get(entry);
  if (!validate) {
    try {
      // Precompiled for the schemas runflow ships; the validator lives as long as its entry.
      validate = validatorOf("model-input", entry.input_schema);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ModelSchemaError(
        `${entry.source ?? entry.model_id}: input_schema is not a usable JSON Schema (${reason})`,
        { hint: "fix the model's schema file", cause: error },
      );
    }
    compiled.set(entry, validate);
  }
  return validate;
}

/** A short rendering of a value for "(got …)". */
function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  return value === undefined ? "nothing" : "an object";
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** `/image/0` → segments [`image`, `0`] (JSON Pointer, RFC 6901). */
function pointerSegments(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function displayPath(segments: readonly string[]): string {
  return segments.reduce(
    (text, segment) => (/^\d+$/.test(segment) ? `${text}[${segment}]` : `${text}.${segment}`),
    "input",
  );
}

function valueAt(data: unknown, segments: readonly string[]): unknown {
  let current = data;
  for (const segment of segments) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function issueFromAjv(error: ErrorObject, data: Record<string, unknown>): InputIssue {
  const segments = pointerSegments(error.instancePath);
  const params = error.params as Record<string, unknown>;
  if (error.keyword === "required") {
    const missing = String(params.missingProperty);
    return {
      field: segments[0] ?? missing,
      kind: "required",
      message: `${displayPath([...segments, missing])} is required`,
    };
  }
  const where = displayPath(segments);
  const field = segments[0];
  const value = valueAt(data, segments);
  const got = `(got ${describeValue(value)})`;
  switch (error.keyword) {
    case "type": {
      const types = String(params.type).split(",").map(article).join(" or ");
      return { field, kind: "type", message: `${where} must be ${types} ${got}` };
    }
    case "enum": {
      const allowed = (params.allowedValues as unknown[]).map((option) => JSON.stringify(option));
      const shown = allowed.length > 12 ? [...allowed.slice(0, 12), "…"] : allowed;
      return { field, kind: "enum", message: `${where} must be one of ${shown.join(", ")} ${got}` };
    }
    case "maxLength": {
      // Characters as ajv counts them: code points, so an emoji is one.
      const length = typeof value === "string" ? [...value].length : 0;
      return {
        field,
        kind: "maxLength",
        message: `${where} is longer than ${String(params.limit)} characters (${length})`,
      };
    }
    default:
      return { field, kind: error.keyword, message: `${where} ${error.message ?? "is invalid"} ${got}` };
  }
}

function unknownFieldIssue(field: string, entry: ModelEntry, known: readonly string[]): InputIssue {
  const nearest = known.length > 0 ? closest(field, [...known]) : undefined;
  const close =
    nearest !== undefined && distance(field, nearest) <= Math.max(2, Math.floor(nearest.length / 3));
  const help = close
    ? `did you mean \`${nearest}\`?`
    : `its inputs are ${known.map((name) => `\`${name}\``).join(", ")}`;
  return {
    field,
    kind: "unknown_field",
    message: `input.${field} is not an input of ${entry.model_id}; ${help}`,
  };
}

/**
 * Validates `input` for the model `entry` without touching the network. Throws only when
 * the model's own schema is unusable (ModelSchemaError); problems with the input are
 * returned as issues, all of them at once.
 */
export function validateModelInput(
  entry: ModelEntry,
  input: Record<string, unknown>,
  options: ValidateModelInputOptions = {},
): ModelInputValidation {
  const deferred = options.deferred ?? new Set<string>();
  const properties = entry.input_schema.properties;
  const known = Object.keys(properties);
  const issues: InputIssue[] = [];

  const checked: Record<string, unknown> = {};
  const passedThrough: Record<string, unknown> = {};
  for (const [field, fieldValue] of Object.entries(input)) {
    // An absent value (a JS caller's `undefined`) is no value: defaults and `required` apply.
    if (fieldValue === undefined) continue;
    if (!Object.hasOwn(properties, field)) issues.push(unknownFieldIssue(field, entry, known));
    else if (deferred.has(field)) passedThrough[field] = fieldValue;
    else checked[field] = structuredClone(fieldValue);
  }

  const validate = validatorFor(entry);
  if (!validate(checked)) {
    for (const error of validate.errors ?? []) {
      const isTopLevel = error.instancePath === "";
      if (isTopLevel && error.keyword === "required" && deferred.has(String(error.params.missingProperty))) {
        continue;
      }
      // Unknown fields are reported above, with a suggestion.
      if (isTopLevel && error.keyword === "additionalProperties") continue;
      issues.push(issueFromAjv(error, checked));
    }
  }

  for (const field of mediaUrlFieldsOf(entry)) {
    const url = checked[field];
    const problem = typeof url === "string" ? checkMediaUrl(url) : undefined;
    if (problem) issues.push({ field, kind: "media_url", message: `input.${field}: ${problem}` });
  }

  return { value: { ...checked, ...passedThrough }, issues };
}
