/**
 * Expansion (SPEC §4): a job and its `for_each` items → instances with unique, path-safe
 * keys. Keys become folder names and addresses (`JOB/KEY/STEP`), so an unsafe key is
 * refused with the row that produced it, never silently rewritten: a sanitised key could
 * collide with another, and would not be what the user typed when they `--only` or look
 * for a folder.
 */
import type { Diagnostic, SourceLocation } from "../errors.js";
import { resolveValue, TemplateResolutionError, type TemplateContext } from "../template/resolve.js";
import type { JobInstance } from "./types.js";

export type ItemsKind = "single" | "csv" | "jsonl" | "list" | "matrix";

/** The most instances one job may expand to: a larger matrix is almost surely a mistake. */
export const MAX_INSTANCES_PER_JOB = 1_000_000;

export interface ItemInput {
  item: Record<string, unknown>;
  origin: SourceLocation | undefined;
}

export interface ExpansionInput {
  jobId: string;
  kind: ItemsKind;
  items: readonly ItemInput[];
  /** The job's `key` template; undefined: the item's `id`, else its position. */
  keyTemplate: string | undefined;
  /** Where to point when an instance has no origin of its own (the job's `for_each` or id). */
  jobLocation: SourceLocation;
  /** What the key template may read besides the item. */
  context: Pick<TemplateContext, "vars" | "workflow" | "env">;
}

export interface ExpandedJob {
  instances: JobInstance[];
  diagnostics: Diagnostic[];
}

/** Why `key` cannot name an instance (a folder), or undefined when it can. */
export function instanceKeyProblem(key: string): string | undefined {
  if (key === "") return "is empty";
  if (key === "." || key === "..") return `\`${key}\` is not a usable folder name`;
  if (/[/\\]/.test(key)) return "contains `/` or `\\` (keys become folder names)";
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(key)) return "contains a control character";
  if (key !== key.trim()) return "starts or ends with a space";
  if (key.length > 200) return "is longer than 200 characters";
  return undefined;
}

/**
 * How messages name one item: `row 3` (CSV), `line 12` (JSONL), `item 2` (inline list),
 * `combination 4` (matrix); `withPlace` adds where it was written: `row 3 (items/teasers.csv:4)`.
 */
export function describeItem(
  kind: ItemsKind,
  index: number,
  origin: SourceLocation | undefined,
  withPlace = false,
): string {
  const place = withPlace && origin ? ` (${origin.file}:${origin.line})` : "";
  switch (kind) {
    case "csv":
      return `row ${index + 1}${place}`;
    case "jsonl":
      return origin ? `line ${origin.line}${withPlace ? ` of ${origin.file}` : ""}` : `item ${index + 1}`;
    case "list":
      return `item ${index + 1}${place}`;
    case "matrix":
      return `combination ${index + 1}`;
    case "single":
      return "the job's one instance";
  }
}

function defaultKey(item: Record<string, unknown>, index: number): string {
  const id = Object.hasOwn(item, "id") ? item.id : undefined;
  if ((typeof id === "string" && id !== "") || typeof id === "number") return String(id);
  return String(index + 1);
}

/** Renders the key template for one item; `context` is reused across items (only `item` changes). */
function renderKey(template: string, context: TemplateContext): { key: string } | { problem: string } {
  let value: unknown;
  try {
    value = resolveValue(template, context);
  } catch (error) {
    if (error instanceof TemplateResolutionError) return { problem: `key ${error.message}` };
    throw error;
  }
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return { key: String(value) };
  }
  return { problem: `key \`${template}\` gives ${value === null ? "null" : "a list or map"}, not text` };
}

/** Instances of one job with their keys; every bad or duplicate key is a diagnostic. */
export function expandInstances(input: ExpansionInput): ExpandedJob {
  const { jobId, kind, items } = input;
  const diagnostics: Diagnostic[] = [];
  const path = `jobs.${jobId}`;
  if (kind === "single") {
    return { instances: [{ key: jobId, item: {}, origin: undefined }], diagnostics };
  }
  if (items.length > MAX_INSTANCES_PER_JOB) {
    diagnostics.push({
      message: `${path} expands to ${items.length} instances; at most ${MAX_INSTANCES_PER_JOB} are allowed`,
      location: input.jobLocation,
      path: `${path}.for_each`,
      hint: "split the items into several workflows",
    });
    return { instances: [], diagnostics };
  }
  const instances: JobInstance[] = [];
  const firstByKey = new Map<string, number>();
  const keyContext: TemplateContext = {
    ...input.context,
    item: {},
    job: { id: jobId, key: "" },
    run: { id: "", date: "" },
    steps: {},
  };
  items.forEach(({ item, origin }, index) => {
    const where = describeItem(kind, index, origin);
    const location = origin ?? input.jobLocation;
    let key: string;
    if (input.keyTemplate === undefined) key = defaultKey(item, index);
    else {
      keyContext.item = item;
      const rendered = renderKey(input.keyTemplate, keyContext);
      if ("problem" in rendered) {
        diagnostics.push({
          message: `${path}, ${where}: ${rendered.problem}`,
          location,
          path: `${path}.key`,
        });
        return;
      }
      key = rendered.key;
    }
    const problem = instanceKeyProblem(key);
    if (problem) {
      diagnostics.push({
        message: `${path}, ${where}: instance key ${JSON.stringify(key)} ${problem}`,
        location,
        path: `${path}.key`,
        hint: "set the job's `key:` to a template that gives a plain name, e.g. `${{ item.id }}`",
      });
      return;
    }
    const first = firstByKey.get(key);
    if (first !== undefined) {
      diagnostics.push({
        message: `${path}: instance key ${JSON.stringify(key)} is used by both ${describeItem(kind, first, items[first]?.origin, true)} and ${describeItem(kind, index, origin, true)}`,
        location,
        path: `${path}.key`,
        hint:
          input.keyTemplate === undefined
            ? "instance keys default to the item's `id` field, else its position; give each item a unique `id`, or set the job's `key:`"
            : "instance keys must be unique: make the job's `key:` template tell the items apart",
      });
      return;
    }
    firstByKey.set(key, index);
    instances.push({ key, item, origin });
  });
  return { instances, diagnostics };
}
