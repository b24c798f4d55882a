/**
 * Item data and step results in paths (the workflow's `outputs`, a run step's `cwd` and
 * `outputs`). The workflow's author is trusted with paths: their own text may say `../shared`
 * or `/mnt/media`. A value put in from an item (a CSV row, a JSONL line) or from a step's
 * result (the API's answer, a program's stdout) is not: it may name subfolders (`cats/tabby`)
 * but never climb out of where the author's text put it (docs/security.md).
 */
import type { TemplateRef } from "./parse.js";
import { asText, TemplateResolutionError, type ValueGuard } from "./resolve.js";

/** Why `text`, put into a path, could lead out of it; undefined when it cannot. */
export function pathValueProblem(text: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(text)) return "contains a control character";
  if (text.includes("\\")) return "contains `\\`";
  if (text.startsWith("/")) return "is an absolute path";
  if (text.split("/").some((segment) => segment === "." || segment === "..")) return "contains `..` or `.`";
  // Dots at either end could join the text beside them into `..`.
  if (text.startsWith(".") || text.endsWith(".")) return "starts or ends with `.`";
  return undefined;
}

/** A value from outside that would lead a path out of where the workflow's text put it. */
export class UnsafePathValueError extends TemplateResolutionError {}

/** Whether the value `ref` reads comes from outside the workflow's text. */
function isUntrusted(ref: TemplateRef): boolean {
  if (ref.root === "item") return true;
  // `steps.ID.files` are runflow's own paths; everything else of a step came from outside.
  return ref.root === "steps" && ref.path[1] !== "files";
}

/**
 * The guard for path templates: refuses an item value or step result that would climb out,
 * naming it, e.g. `${{ item.folder }}: item data in a path may not climb out of it: `../x` contains `..` or `.``.
 */
export const pathValueGuard: ValueGuard = (ref, value) => {
  if (!isUntrusted(ref)) return;
  const text = asText(value);
  const problem = pathValueProblem(text);
  if (problem === undefined) return;
  const source = ref.root === "item" ? "item data" : "a step's result";
  throw new UnsafePathValueError(
    ref,
    `${source} in a path may not lead out of it: ${JSON.stringify(text)} ${problem}`,
  );
};
