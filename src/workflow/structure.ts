/**
 * Stage (b): the document against schemas/workflow.schema.json, every ajv error rewritten
 * into one plain sentence at the place it concerns ("jobs.teaser.steps[0]: unknown key
 * `modle` (did you mean `model`?)"). Branch noise of `anyOf`/`oneOf` becomes one message.
 */
import type { ErrorObject } from "ajv";
import { closest, distance } from "fastest-levenshtein";
import type { Diagnostic } from "../errors.js";
import type { PathSegment } from "../template/parse.js";
import { canonicalJson } from "../util/canonical.js";
import { workflowSchema, workflowValidator, type SchemaNode } from "./schema.js";
import { formatDocPath, type SourceMap } from "./source.js";

/** A value as messages show it: scalars written out, collections named. */
export function shown(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (Array.isArray(value)) return "a list";
  if (value !== null && typeof value === "object") return "a map";
  return `\`${String(value)}\``;
}

/** The closest of `candidates` to `word`, when it is close enough to be a likely typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, [...candidates]);
  const edits = distance(word.toLowerCase(), best.toLowerCase());
  // Short names are all "close" to each other: a suggestion must keep most of the word.
  return edits <= Math.max(2, Math.floor(best.length / 3)) && edits < Math.min(word.length, best.length)
    ? best
    : undefined;
}

function pointerToPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === "") return [];
  const path: PathSegment[] = [];
  let current = data;
  for (const raw of pointer.slice(1).split("/")) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const key: PathSegment = Array.isArray(current) ? Number(segment) : segment;
    path.push(key);
    current =
      current !== null && typeof current === "object"
        ? (current as Record<string | number, unknown>)[key]
        : undefined;
  }
  return path;
}

const TYPE_WORDS: Record<string, string> = {
  string: "text",
  object: "a map",
  array: "a list",
  boolean: "`true` or `false`",
  number: "a number",
  integer: "an integer",
  null: "null",
};

function expectedType(schema: SchemaNode | undefined, type: string): string {
  if ((type === "integer" || type === "number") && typeof schema?.minimum === "number") {
    return `${TYPE_WORDS[type]} ≥ ${schema.minimum}`;
  }
  return TYPE_WORDS[type] ?? type;
}

const DURATION_HELP = "a duration like `10s`, `5m`, `500ms`, `1h`, `6d`, or a number of seconds";

/** What a map's keys are called in messages, by the map's own key. */
function keyKind(parent: PathSegment | undefined): string {
  if (parent === "jobs") return "job id";
  if (parent === "matrix") return "matrix field";
  if (parent === "outputs") return "output name";
  return "key";
}

function typeOfData(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  return typeof value;
}

interface Rewritten {
  path: PathSegment[];
  part: "key" | "value";
  message: string;
  hint?: string;
}

class ErrorRewriter {
  private readonly definitions: Record<string, SchemaNode>;

  constructor(private readonly data: unknown) {
    this.definitions = (workflowSchema().definitions ?? {}) as Record<string, SchemaNode>;
  }

  private definitionsByJson: Map<string, SchemaNode> | undefined;

  /**
   * The schema node an error names, as this module's own object: a precompiled validator
   * (util/validators.ts) reports copies of the schema's nodes, and the definitions are told
   * apart by identity below.
   */
  private ownNode(node: SchemaNode | undefined): SchemaNode | undefined {
    if (!node || Object.values(this.definitions).includes(node)) return node;
    this.definitionsByJson ??= new Map(
      Object.values(this.definitions).map((definition) => [canonicalJson(definition), definition]),
    );
    return this.definitionsByJson.get(canonicalJson(node)) ?? node;
  }

  private valueAt(path: readonly PathSegment[]): unknown {
    let current = this.data;
    for (const segment of path) {
      if (current === null || typeof current !== "object") return undefined;
      current = (current as Record<string | number, unknown>)[segment];
    }
    return current;
  }

  rewrite(errors: readonly ErrorObject[]): Rewritten[] {
    const out: Rewritten[] = [];
    const dropped = this.branchNoise(errors);
    for (const error of errors) {
      if (dropped.has(error)) continue;
      const rewritten = this.one(error);
      if (rewritten) out.push(rewritten);
    }
    return this.withoutRedundantRequired(out);
  }

  /**
   * Errors that only explain why a non-chosen branch failed. `anyOf` of a duration becomes
   * one message; `oneOf` (for_each) keeps the branch whose type matches the data.
   */
  private branchNoise(errors: readonly ErrorObject[]): Set<ErrorObject> {
    const dropped = new Set<ErrorObject>();
    for (const error of errors) {
      if (error.keyword === "if") dropped.add(error);
      if (error.keyword === "anyOf" || error.keyword === "oneOf") {
        const branches = (Array.isArray(error.schema) ? error.schema : []) as SchemaNode[];
        const chosen = branches.findIndex((branch) => {
          const type = typeOfData(error.data);
          return branch.type === type || (branch.type === "number" && type === "number");
        });
        for (const other of errors) {
          if (other === error || other.instancePath !== error.instancePath) continue;
          const prefix = error.schemaPath;
          if (!other.schemaPath.startsWith(`${prefix}/`)) continue;
          // anyOf: the summary message says it all; oneOf: keep the errors of the matching branch.
          if (
            error.keyword === "anyOf" ||
            chosen < 0 ||
            !other.schemaPath.startsWith(`${prefix}/${chosen}/`)
          ) {
            dropped.add(other);
          }
        }
        if (error.keyword === "oneOf" && chosen >= 0) dropped.add(error);
      }
    }
    return dropped;
  }

  private one(error: ErrorObject): Rewritten | undefined {
    const path = pointerToPath(error.instancePath, this.data);
    const where = formatDocPath(path);
    const params = error.params as Record<string, unknown>;
    const parent = this.ownNode(schemaNode(error.parentSchema));
    const got = shown(error.data);
    const subject = where === "" ? "the workflow" : where;

    if (error.propertyName !== undefined) {
      // A map key broke a rule of `propertyNames`: point at the key itself.
      const name = error.propertyName;
      const rule = parent?.patternErrorMessage ?? error.message ?? "is not allowed";
      return {
        path: [...path, name],
        part: "key",
        message: `${subject}: ${keyKind(path[path.length - 1])} \`${name}\` ${rule}`,
      };
    }

    switch (error.keyword) {
      case "propertyNames":
        return undefined;
      case "additionalProperties":
        return this.unknownKey(path, String(params.additionalProperty), parent);
      case "required": {
        const missing = String(params.missingProperty);
        if (where === "") {
          return {
            path,
            part: "value",
            message: `missing required top-level key \`${missing}\``,
            hint: missing === "version" ? "add `version: 1` at the top of the file" : undefined,
          };
        }
        const isStep = parent === this.definitions.modelStep;
        return {
          path,
          part: "value",
          message: `${where}: missing required key \`${missing}\``,
          hint:
            isStep && (missing === "model" || missing === "input")
              ? "a step is a model step (`model` + `input`) or a run step (`run`)"
              : undefined,
        };
      }
      case "type": {
        const expected = String(params.type)
          .split(",")
          .map((type) => expectedType(parent, type))
          .join(" or ");
        if (where === "") {
          return {
            path,
            part: "value",
            message: `the workflow must be a map of keys (\`version\`, \`name\`, \`jobs\`, …), got ${got}`,
          };
        }
        return { path, part: "value", message: `${where} must be ${expected}, got ${got}` };
      }
      case "minimum": {
        const type = typeof parent?.type === "string" ? parent.type : "number";
        return { path, part: "value", message: `${where} must be ${expectedType(parent, type)}, got ${got}` };
      }
      case "const":
        return {
          path,
          part: "value",
          message: `${where} must be ${JSON.stringify(params.allowedValue)}, got ${got}`,
          hint: where === "version" ? "this runflow reads workflow files of version 1" : undefined,
        };
      case "pattern":
        return {
          path,
          part: "value",
          message: `${where} ${parent?.patternErrorMessage ?? `must match ${String(params.pattern)}`}, got ${got}`,
        };
      case "minItems":
      case "minProperties":
      case "minLength":
        return params.limit === 1
          ? { path, part: "value", message: `${where} must not be empty` }
          : { path, part: "value", message: `${where} ${error.message ?? "is too short"}` };
      case "maxLength":
        return {
          path,
          part: "value",
          message: `${where} must be at most ${String(params.limit)} characters, got ${got}`,
        };
      case "uniqueItems": {
        const list = Array.isArray(error.data) ? (error.data as unknown[]) : [];
        return {
          path: [...path, Number(params.j)],
          part: "value",
          message: `${where} lists ${shown(list[Number(params.j)])} twice`,
        };
      }
      case "anyOf":
        return { path, part: "value", message: `${where} must be ${DURATION_HELP}, got ${got}` };
      case "oneOf": {
        const branches = (Array.isArray(error.schema) ? error.schema : []) as SchemaNode[];
        const kinds = branches.map((branch) => TYPE_WORDS[String(branch.type)] ?? String(branch.type));
        const hint =
          path[path.length - 1] === "for_each"
            ? "write a .csv or .jsonl path, a list of items, or `{ matrix: { NAME: [values] } }`"
            : undefined;
        return { path, part: "value", message: `${where} must be ${kinds.join(", ")}, got ${got}`, hint };
      }
      default:
        return { path, part: "value", message: `${where} ${error.message ?? "is invalid"}, got ${got}` };
    }
  }

  private unknownKey(path: PathSegment[], key: string, parent: SchemaNode | undefined): Rewritten {
    const where = formatDocPath(path);
    const allowed = Object.keys(parent?.properties ?? {});
    const { modelStep, runStep } = this.definitions;
    const step = this.valueAt(path);
    const keyPath = [...path, key];
    if (parent === runStep && (key === "model" || key === "input") && isObject(step) && "run" in step) {
      return {
        // One message for both keys: the path is the same whichever key ajv flagged.
        path: [...path, "model"],
        part: "key",
        message: `${where}: a step has either \`model\` (a model step) or \`run\` (a run step), not both`,
      };
    }
    const other = parent === modelStep ? runStep : parent === runStep ? modelStep : undefined;
    if (other?.properties && Object.hasOwn(other.properties, key)) {
      const kinds = parent === modelStep ? ["run", "model"] : ["model", "run"];
      return {
        path: keyPath,
        part: "key",
        message: `${where}: \`${key}\` is a key of ${kinds[0]} steps, not of ${kinds[1]} steps`,
      };
    }
    const suggestion = didYouMean(key, allowed);
    const help = suggestion
      ? ` (did you mean \`${suggestion}\`?)`
      : allowed.length > 0
        ? `; allowed: ${allowed.map((name) => `\`${name}\``).join(", ")}`
        : "";
    return {
      path: keyPath,
      part: "key",
      message:
        where === "" ? `unknown top-level key \`${key}\`${help}` : `${where}: unknown key \`${key}\`${help}`,
    };
  }

  /** "unknown key `modle` (did you mean `model`?)" already says that `model` is missing. */
  private withoutRedundantRequired(list: Rewritten[]): Rewritten[] {
    return list.filter((item) => {
      const missing = /missing required (?:top-level )?key `([^`]+)`$/.exec(item.message)?.[1];
      if (!missing) return true;
      const here = formatDocPath(item.path);
      return !list.some(
        (other) =>
          other.message.includes(`(did you mean \`${missing}\`?)`) &&
          formatDocPath(other.path.slice(0, -1)) === here,
      );
    });
  }
}

/** ajv types the schemas it reports as `any`; they are parts of our own schema. */
function schemaNode(value: unknown): SchemaNode | undefined {
  return isObject(value) ? value : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Validates `data` against the workflow schema; every problem as a located diagnostic. */
export function checkStructure(data: unknown, source: SourceMap): Diagnostic[] {
  const validate = workflowValidator();
  if (validate(data)) return [];
  const seen = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  for (const item of new ErrorRewriter(data).rewrite(validate.errors ?? [])) {
    const path = formatDocPath(item.path);
    const id = `${path}\u0000${item.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    diagnostics.push({
      message: item.message,
      location: source.locate(item.path, item.part),
      path: path === "" ? undefined : path,
      hint: item.hint,
    });
  }
  return diagnostics;
}
