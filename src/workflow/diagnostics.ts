import type { Diagnostic } from "../errors.js";

/** Whether any of `diagnostics` has a path at or under `prefix` (e.g. `jobs.teaser`). */
export function hasDiagnosticUnder(diagnostics: readonly Diagnostic[], prefix: string): boolean {
  return diagnostics.some(
    (d) =>
      d.path !== undefined &&
      (d.path === prefix || d.path.startsWith(`${prefix}.`) || d.path.startsWith(`${prefix}[`)),
  );
}

/** How many problems of one kind are listed before the rest are counted in one line. */
export const SAME_PROBLEM_LIMIT = 5;

/**
 * Collects diagnostics. A problem repeated by thousands of rows (one bad column in a 100,000
 * row CSV) is listed a few times and then counted, so the real message stays readable.
 */
export class DiagnosticSink {
  readonly #list: Diagnostic[] = [];
  readonly #groups = new Map<string, { count: number; last: Diagnostic }>();

  add(diagnostic: Diagnostic): void {
    this.#list.push(diagnostic);
  }

  addAll(diagnostics: Iterable<Diagnostic>): void {
    for (const diagnostic of diagnostics) this.#list.push(diagnostic);
  }

  /** Adds `diagnostic` unless `group` already has SAME_PROBLEM_LIMIT entries; those are counted. */
  addGrouped(group: string, diagnostic: Diagnostic): void {
    const seen = this.#groups.get(group);
    if (!seen) this.#groups.set(group, { count: 1, last: diagnostic });
    else {
      seen.count++;
      seen.last = diagnostic;
    }
    if ((seen?.count ?? 1) <= SAME_PROBLEM_LIMIT) this.#list.push(diagnostic);
  }

  get size(): number {
    return this.#list.length;
  }

  /**
   * Adds the first few of `total` occurrences of one problem (`listed`), and a line that
   * counts the rest.
   */
  addTally(listed: readonly Diagnostic[], total: number): void {
    this.#list.push(...listed);
    const last = listed[listed.length - 1];
    if (last && total > listed.length) {
      this.#list.push({
        ...last,
        message: `… and ${total - listed.length} more like this (${total} in all)`,
      });
    }
  }

  /** Every diagnostic, sorted by file and position, with one summary per overflowing group. */
  list(): Diagnostic[] {
    const all = [...this.#list];
    for (const { count, last } of this.#groups.values()) {
      if (count > SAME_PROBLEM_LIMIT) {
        all.push({
          ...last,
          message: `… and ${count - SAME_PROBLEM_LIMIT} more like this (${count} in all; the last: ${last.message})`,
        });
      }
    }
    // Files in the order they were first mentioned (the workflow first), then line and column.
    const fileRank = new Map<string, number>();
    for (const d of all)
      if (d.location && !fileRank.has(d.location.file)) fileRank.set(d.location.file, fileRank.size);
    const rank = (d: Diagnostic): [number, number, number] =>
      d.location
        ? [fileRank.get(d.location.file) ?? 0, d.location.line, d.location.column]
        : [Number.MAX_SAFE_INTEGER, 0, 0];
    return all
      .map((diagnostic, index) => ({ key: rank(diagnostic), diagnostic, index }))
      .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2] || a.index - b.index)
      .map(({ diagnostic }) => diagnostic);
  }
}
