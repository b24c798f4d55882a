/**
 * The shape of one model entry (a file in schemas/models/ or an item of the API's catalog),
 * checked before anything relies on it, so a bad file is one message naming the file and
 * the exact place that is wrong instead of a crash deep in validation.
 */
import { ModelSchemaError } from "./errors.js";
import { MEDIA_RULES, type MediaRuleName, type ModelEntry } from "./types.js";

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? JSON.stringify(value) : `a ${typeof value}`;
}

function isMediaRuleName(value: unknown): value is MediaRuleName {
  return typeof value === "string" && (MEDIA_RULES as readonly string[]).includes(value);
}

/** Every problem with the entry's shape, each as `path: what is wrong`. */
function shapeProblems(data: unknown): string[] {
  if (!isObject(data)) return [`the file must hold a JSON object, not ${describe(data)}`];
  const problems: string[] = [];
  if (typeof data.model_id !== "string" || data.model_id.trim() === "") {
    problems.push(`model_id must be a non-empty string (got ${describe(data.model_id)})`);
  }
  if (data.output_schema !== undefined && !isObject(data.output_schema)) {
    problems.push(`output_schema must be an object (got ${describe(data.output_schema)})`);
  }
  const schema = data.input_schema;
  if (!isObject(schema)) {
    problems.push(`input_schema must be an object (got ${describe(schema)})`);
    return problems;
  }
  if (schema.type !== "object") {
    problems.push(`input_schema.type must be "object" (got ${describe(schema.type)})`);
  }
  if (
    schema.required !== undefined &&
    !(Array.isArray(schema.required) && schema.required.every((name) => typeof name === "string"))
  ) {
    problems.push(`input_schema.required must be a list of field names`);
  }
  if (!isObject(schema.properties)) {
    problems.push(`input_schema.properties must be an object (got ${describe(schema.properties)})`);
    return problems;
  }
  for (const [field, property] of Object.entries(schema.properties)) {
    const where = `input_schema.properties.${field}`;
    if (!isObject(property)) {
      problems.push(`${where} must be an object (got ${describe(property)})`);
      continue;
    }
    if (property.validations === undefined) continue;
    if (!Array.isArray(property.validations)) {
      problems.push(`${where}.validations must be a list (got ${describe(property.validations)})`);
      continue;
    }
    property.validations.forEach((rule: unknown, index) => {
      problems.push(...ruleProblems(rule, `${where}.validations[${index}]`));
    });
  }
  return problems;
}

function ruleProblems(rule: unknown, where: string): string[] {
  if (!isObject(rule)) return [`${where} must be an object (got ${describe(rule)})`];
  const problems: string[] = [];
  if (!isMediaRuleName(rule.validation_rule)) {
    // An unknown rule is refused rather than skipped: skipping it could let through an
    // input the API rejects, and the user would learn it from a failed run, not `validate`.
    problems.push(
      `${where}.validation_rule ${describe(rule.validation_rule)} is not a rule runflow can check ` +
        `(known: ${MEDIA_RULES.join(", ")})`,
    );
  }
  if (typeof rule.validation_value !== "number" || !Number.isFinite(rule.validation_value)) {
    problems.push(`${where}.validation_value must be a number (got ${describe(rule.validation_value)})`);
  }
  if (typeof rule.validation_error !== "string") {
    problems.push(`${where}.validation_error must be a string (got ${describe(rule.validation_error)})`);
  }
  return problems;
}

/**
 * Checks that `data` is a usable model entry and returns it typed. `source` names where it
 * came from (a file path, or "the catalog") in the error and is recorded on the entry.
 */
export function parseModelEntry(data: unknown, source: string): ModelEntry {
  const problems = shapeProblems(data);
  if (problems.length > 0) {
    throw new ModelSchemaError(
      problems.length === 1
        ? `${source}: ${problems[0]}`
        : `${source}: ${problems.length} problems:\n  ${problems.join("\n  ")}`,
      { hint: "fix the file, or remove it; see schemas/models/ for entries in the expected shape" },
    );
  }
  const entry = data as ModelEntry;
  return { ...entry, source };
}

/** The entry without runflow's bookkeeping: exactly the catalog's shape, for writing to a file. */
export function catalogShapeOf(entry: ModelEntry): ModelEntry {
  const { source: _source, ...catalog } = entry;
  return catalog;
}

/**
 * The file name a model's entry is stored under: each id segment lowercased with runs of
 * other characters turned into `-`, segments joined by `--`
 * (`minimax/Hailuo Video 01 Live` → `minimax--hailuo-video-01-live.json`).
 */
export function modelFileName(modelId: string): string {
  const segments = modelId
    .split("/")
    .map((segment) =>
      segment
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, ""),
    )
    .filter((segment) => segment !== "");
  return `${segments.join("--") || "model"}.json`;
}
