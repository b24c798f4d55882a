/**
 * Whether a succeeded request's `output` is one: an object that matches the model's output
 * schema (`output_schema.output` in schemas/models/*.json) and names at least one of the
 * outputs it lists. An answer `succeeded` with no output, `{}` or a bare string has nothing
 * to download or to hand to the next step, so it must not end as a succeeded step.
 */
import type { ValidateFunction } from "ajv";
import { validatorOf } from "../util/validators.js";
import type { ModelEntry } from "./types.js";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The schema of `output` itself: `output_schema.output`, or `output_schema` when it is one. */
export function outputSchemaOf(entry: ModelEntry | undefined): Record<string, unknown> | undefined {
  const schema = entry?.output_schema;
  if (!isRecord(schema)) return undefined;
  if (isRecord(schema.output)) return schema.output;
  return "properties" in schema || "type" in schema ? schema : undefined;
}

const compiled = new WeakMap<object, ValidateFunction | null>();

function validatorFor(schema: Record<string, unknown>): ValidateFunction | undefined {
  let validate = compiled.get(schema);
  if (validate === undefined) {
    try {
      // Precompiled for the schemas runflow ships (util/validators.ts).
      validate = validatorOf("model-output", schema);
    } catch {
      // A schema ajv cannot read checks nothing beyond "non-empty" (below), rather than failing results.
      validate = null;
    }
    compiled.set(schema, validate);
  }
  return validate ?? undefined;
}

function describe(value: unknown): string {
  if (typeof value === "string")
    return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)})`;
  if (Array.isArray(value)) return "a list";
  return value === null ? "null" : `a ${typeof value}`;
}

/**
 * What is wrong with a succeeded request's output, in words that finish "the request
 * succeeded but …", or undefined when it is usable. `present` tells an absent `output`
 * from one that is not an object (`value` is then what came instead).
 */
export function outputProblem(entry: ModelEntry | undefined, value: unknown): string | undefined {
  const schema = outputSchemaOf(entry);
  const names = isRecord(schema?.properties) ? Object.keys(schema.properties) : [];
  const expected = names.length > 0 ? ` (${entry?.model_id ?? "the model"} gives ${names.join(", ")})` : "";
  if (value === undefined) return `its result has no output${expected}`;
  if (!isRecord(value)) return `its output is ${describe(value)}, not an object of named outputs${expected}`;
  const given = Object.keys(value).filter((name) => value[name] !== null && value[name] !== undefined);
  if (given.length === 0) return `its output is empty${expected}`;
  if (names.length > 0 && !given.some((name) => names.includes(name))) {
    return `its output names none of the model's outputs: got ${given.join(", ")}${expected}`;
  }
  const validate = schema ? validatorFor(schema) : undefined;
  if (validate && !validate(value)) {
    const errors = (validate.errors ?? []).map(
      (error) => `output${error.instancePath.replaceAll("/", ".")} ${error.message ?? "is invalid"}`,
    );
    return `its output does not match the model's output schema: ${errors.join("; ")}`;
  }
  return undefined;
}
