/**
 * Resolving templates against a context: a pure data lookup (own properties and list
 * indices only), so no template can reach a prototype, call a function or read the token.
 */
import { setOwn } from "./data.js";
import {
  escapeTemplateText,
  formatPath,
  parseTemplateCached,
  type PathSegment,
  type TemplateRef,
} from "./parse.js";

export const TEMPLATE_ROOTS = ["item", "vars", "workflow", "job", "run", "env", "steps"] as const;
export type TemplateRoot = (typeof TEMPLATE_ROOTS)[number];

/** The API token's variables (SPEC §3): never readable by a template, whatever the environment holds. */
export const TOKEN_VARIABLES: readonly string[] = ["RUNCOMFY_API_TOKEN", "YOUR_API_TOKEN"];

/** What `steps.ID.…` can read (SPEC §4). */
export const STEP_RESULT_FIELDS = ["output", "files", "request_id", "stdout"] as const;

/** The result of a finished step, as templates see it. */
export interface StepResultView {
  /** The API result's `output` object (`video`, `image`, `videos`, `images`). */
  output?: Record<string, unknown>;
  /** Local paths of downloaded outputs by output name, or a run step's named `outputs`. */
  files?: Record<string, string | string[]>;
  request_id?: string;
  /** A run step's standard output. */
  stdout?: string;
}

/** Everything a template can read. The engine fills `steps` as steps finish. */
export interface TemplateContext {
  item: Record<string, unknown>;
  vars: Record<string, unknown>;
  workflow: { name: string };
  job: { id: string; key: string };
  run: { id: string; date: string };
  /** The environment; the token variables are refused even when present. */
  env: Record<string, string | undefined>;
  steps: Record<string, StepResultView>;
}

/** A template whose value cannot be found; `template` is the template as written. */
export class TemplateResolutionError extends Error {
  readonly template: string;
  readonly reason: string;

  constructor(ref: TemplateRef, reason: string) {
    super(`${ref.source}: ${reason}`);
    this.name = "TemplateResolutionError";
    this.template = ref.source;
    this.reason = reason;
  }
}

type Lookup = { found: true; value: unknown } | { found: false; reason: string; pending?: boolean };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  return typeof value === "string" ? "text" : `${typeof value} \`${asText(value)}\``;
}

function fieldList(record: Record<string, unknown>): string {
  const names = Object.keys(record);
  if (names.length === 0) return "it has no fields";
  const shown = names.slice(0, 12).map((name) => `\`${name}\``);
  return `it has ${shown.join(", ")}${names.length > shown.length ? ", …" : ""}`;
}

/** Walks `path` from `base` through own properties and list indices only. */
function walk(base: unknown, root: string, path: readonly PathSegment[], from = 0): Lookup {
  let current = base;
  for (let index = from; index < path.length; index++) {
    const segment = path[index]!;
    const label = formatPath(root, path.slice(0, index));
    if (Array.isArray(current)) {
      const position = typeof segment === "number" ? segment : /^\d+$/.test(segment) ? Number(segment) : -1;
      if (position < 0) return { found: false, reason: `\`${label}\` is a list; read an item with [N]` };
      if (position >= current.length) {
        return {
          found: false,
          reason: `\`${label}\` has no item ${position} (it has ${current.length})`,
        };
      }
      current = current[position];
    } else if (isRecord(current)) {
      const key = String(segment);
      if (!Object.hasOwn(current, key) || current[key] === undefined) {
        return { found: false, reason: `\`${label}\` has no field \`${key}\` (${fieldList(current)})` };
      }
      current = current[key];
    } else {
      return { found: false, reason: `\`${label}\` is ${describe(current)}, not a map or list` };
    }
  }
  return { found: true, value: current };
}

function lookup(ref: TemplateRef, context: TemplateContext): Lookup {
  const { root, path } = ref;
  switch (root as TemplateRoot) {
    case "item":
      return walk(context.item, root, path);
    case "vars":
      return walk(context.vars, root, path);
    case "workflow":
      return walk(context.workflow, root, path);
    case "job":
      return walk(context.job, root, path);
    case "run":
      return walk(context.run, root, path);
    case "env": {
      const name = path[0];
      if (typeof name === "string" && TOKEN_VARIABLES.includes(name)) {
        return { found: false, reason: `the API token (\`env.${name}\`) is never readable in templates` };
      }
      if (typeof name === "string" && path.length === 1 && context.env[name] === undefined) {
        return { found: false, reason: `the environment variable \`${name}\` is not set` };
      }
      return walk(context.env, root, path);
    }
    case "steps": {
      const stepId = path[0];
      if (typeof stepId !== "string") {
        return {
          found: false,
          reason: "name a step: `steps.ID.output`, `.files`, `.request_id` or `.stdout`",
        };
      }
      if (!Object.hasOwn(context.steps, stepId)) {
        return { found: false, pending: true, reason: `step \`${stepId}\` has no result yet` };
      }
      return walk(context.steps[stepId], root, path, 1);
    }
    default:
      return {
        found: false,
        reason: `unknown root \`${root}\`; templates read ${TEMPLATE_ROOTS.map((r) => `\`${r}\``).join(", ")}`,
      };
  }
}

/**
 * How a value is written into text: strings as they are, numbers and booleans as written,
 * null as nothing, lists and maps as JSON.
 */
export function asText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "boolean":
    case "bigint":
      return String(value);
    case "object":
      return value === null ? "" : JSON.stringify(value);
    default:
      return "";
  }
}

function escapeDeep(value: unknown): unknown {
  if (typeof value === "string") return escapeTemplateText(value);
  if (Array.isArray(value)) return value.map(escapeDeep);
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, element] of Object.entries(value)) {
      setOwn(out, key, escapeDeep(element));
    }
    return out;
  }
  return value;
}

/**
 * Checks a value before it is put in: throws TemplateResolutionError to refuse it (paths
 * refuse item data that would climb out of them: src/template/path-values.ts).
 */
export type ValueGuard = (ref: TemplateRef, value: unknown) => void;

class Resolver {
  /** Set when a step reference was left as its template text (partial mode only). */
  pending = false;

  constructor(
    private readonly context: TemplateContext,
    private readonly partial: boolean,
    /** Escape substituted values: the result will be resolved again, and data must stay data. */
    private readonly escape = false,
    private readonly guard?: ValueGuard,
  ) {}

  private valueOf(ref: TemplateRef): { value: unknown } | undefined {
    const result = lookup(ref, this.context);
    if (result.found) this.guard?.(ref, result.value);
    if (result.found) return { value: this.escape ? escapeDeep(result.value) : result.value };
    if (result.pending && this.partial) {
      this.pending = true;
      return undefined;
    }
    throw new TemplateResolutionError(ref, result.reason);
  }

  string(text: string): unknown {
    if (!text.includes("${{")) return text;
    const parsed = parseTemplateCached(text);
    if (parsed.single) {
      const found = this.valueOf(parsed.single);
      return found ? found.value : text;
    }
    let out = "";
    for (const part of parsed.parts) {
      if (part.ref === undefined) out += part.text;
      else {
        const found = this.valueOf(part.ref);
        out += found ? asText(found.value) : part.ref.source;
      }
    }
    return out;
  }

  /** Returns the same object when nothing inside it changed, so static subtrees are shared, not copied. */
  value(value: unknown): unknown {
    if (typeof value === "string") return this.string(value);
    if (Array.isArray(value)) {
      let changed = false;
      const out = value.map((element: unknown) => {
        const resolved = this.value(element);
        if (resolved !== element) changed = true;
        return resolved;
      });
      return changed ? out : value;
    }
    if (isRecord(value)) {
      let changed = false;
      const out: Record<string, unknown> = {};
      for (const [key, element] of Object.entries(value)) {
        const resolved = this.value(element);
        if (resolved !== element) changed = true;
        setOwn(out, key, resolved);
      }
      return changed ? out : value;
    }
    return value;
  }
}

/**
 * Resolves every template inside `value` (deep over maps and lists). A string that is
 * exactly one template takes the value's type; other strings get the values as text.
 * Throws TemplateResolutionError when a value is missing, a step result included.
 */
export function resolveValue(value: unknown, context: TemplateContext, guard?: ValueGuard): unknown {
  return new Resolver(context, false, false, guard).value(value);
}

export interface PartialResolution {
  value: unknown;
  /** Some step reference had no result in the context and was left as its template text. */
  pending: boolean;
}

/**
 * Resolves what is known now: references to steps missing from `context.steps` stay as
 * their template text (plan output, validation before a run). Other missing values still
 * throw. When something stays pending, the values put in are escaped (`$${{`), so resolving
 * the result again with the step results gives exactly what resolveValue would have.
 */
export function resolveKnown(
  value: unknown,
  context: TemplateContext,
  guard?: ValueGuard,
): PartialResolution {
  const first = new Resolver(context, true, false, guard);
  const resolved = first.value(value);
  if (!first.pending) return { value: resolved, pending: false };
  return { value: new Resolver(context, true, true, guard).value(value), pending: true };
}

/** Calls `visit` for every string inside `value` that holds a template, with its path inside `value`. */
export function forEachTemplateString(
  value: unknown,
  visit: (text: string, at: PathSegment[]) => void,
  at: PathSegment[] = [],
): void {
  if (typeof value === "string") {
    if (value.includes("${{")) visit(value, at);
  } else if (Array.isArray(value)) {
    value.forEach((element: unknown, index) => forEachTemplateString(element, visit, [...at, index]));
  } else if (isRecord(value)) {
    for (const [key, element] of Object.entries(value)) forEachTemplateString(element, visit, [...at, key]);
  }
}

/** Every template reference inside `value`; strings that do not parse are skipped (the rules report them). */
export function templateRefsIn(value: unknown): TemplateRef[] {
  const refs: TemplateRef[] = [];
  forEachTemplateString(value, (text) => {
    try {
      for (const part of parseTemplateCached(text).parts) if (part.ref) refs.push(part.ref);
    } catch {
      // A syntax error is reported by the workflow rules, with its location.
    }
  });
  return refs;
}

/** The ids of the steps `value` reads (`${{ steps.ID… }}`): the dependency edges of a step. */
export function referencedSteps(value: unknown): Set<string> {
  const steps = new Set<string>();
  for (const ref of templateRefsIn(value)) {
    if (ref.root === "steps" && typeof ref.path[0] === "string") steps.add(ref.path[0]);
  }
  return steps;
}

/** Whether `value` reads any of `roots` (e.g. `item`: then it differs per instance). */
export function readsRoots(value: unknown, roots: readonly string[]): boolean {
  return templateRefsIn(value).some((ref) => roots.includes(ref.root));
}

/**
 * The top-level fields of a model input whose value reads a step without a result in
 * `available` (default: none): they are known only at run time, and validated then.
 */
export function deferredFields(
  input: Record<string, unknown>,
  available: Readonly<Record<string, unknown>> = {},
): string[] {
  return Object.keys(input).filter((field) =>
    [...referencedSteps(input[field])].some((stepId) => !Object.hasOwn(available, stepId)),
  );
}
