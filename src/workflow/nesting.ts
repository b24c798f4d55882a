/**
 * How deep values may nest in a workflow or an item. No workflow needs more than a few
 * levels; thousands (`[[[[…]]]]` in a JSONL line) would overflow the stack of every part
 * that walks a value (schema checks, templates, fingerprints), so they are refused at the
 * place they go too deep.
 */
import type { PathSegment } from "../template/parse.js";

export const MAX_NESTING_DEPTH = 64;

/**
 * The path to the first list or map nested more than `limit` levels deep, or undefined.
 * Its own recursion stops at the limit, so it cannot overflow on what it is guarding against.
 */
export function tooDeepAt(value: unknown, limit = MAX_NESTING_DEPTH): PathSegment[] | undefined {
  const walk = (current: unknown, path: PathSegment[]): PathSegment[] | undefined => {
    if (current === null || typeof current !== "object") return undefined;
    if (path.length >= limit) return path;
    const entries: [PathSegment, unknown][] = Array.isArray(current)
      ? current.map((item, index) => [index, item])
      : Object.entries(current);
    for (const [key, child] of entries) {
      const found = walk(child, [...path, key]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(value, []);
}
