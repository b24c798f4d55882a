/**
 * Items files of `for_each` (SPEC §4): CSV with a header row, or JSONL with one object per
 * line. Pure text → items; every bad row is reported with its file and line, not just the first.
 */
import { CsvError, parse } from "csv-parse/sync";
import type { Diagnostic, SourceLocation } from "../errors.js";
import { setOwn } from "../template/data.js";
import { MAX_NESTING_DEPTH, tooDeepAt } from "./nesting.js";

export interface SourcedItem {
  item: Record<string, unknown>;
  /** Where the item starts: line of a CSV row (its first line when a quoted field spans lines), or JSONL line. */
  origin: SourceLocation;
}

export interface ItemsRead {
  items: SourcedItem[];
  diagnostics: Diagnostic[];
}

function newlinesIn(fields: readonly string[]): number {
  let count = 0;
  for (const field of fields) {
    for (let index = field.indexOf("\n"); index >= 0; index = field.indexOf("\n", index + 1)) count++;
  }
  return count;
}

/**
 * A row with no value at all (`,` in a CSV, `{}` in a JSONL file) is a slip of the editor,
 * not an item: taken as one, it submits an empty prompt, and that is billed.
 */
function isEmptyRow(values: readonly unknown[]): boolean {
  return values.every((value) => value === null || (typeof value === "string" && value.trim() === ""));
}

const EMPTY_ROW_HINT = "delete the row, or fill in its values; blank lines are skipped";

/** An item object whose keys are data: `__proto__` becomes an own field, never a prototype. */
function itemFrom(names: readonly string[], values: readonly string[]): Record<string, unknown> {
  const item: Record<string, unknown> = {};
  names.forEach((name, index) => setOwn(item, name, values[index]));
  return item;
}

/**
 * Reads a CSV items file: the header row names the fields; quoted fields may hold commas,
 * quotes (`""`) and newlines; a UTF-8 BOM is ignored; blank lines are skipped, and a row whose
 * every field is empty is refused. Every value is text.
 */
export function parseCsvItems(text: string, file: string): ItemsRead {
  const diagnostics: Diagnostic[] = [];
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, {
      bom: true,
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      // With `info`, each record comes with where it ended; the declared type does not say so.
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (error) {
    const lines = error instanceof CsvError && typeof error.lines === "number" ? error.lines : undefined;
    const reason = error instanceof Error ? error.message.replace(/ at line \d+.*$/, "") : String(error);
    diagnostics.push({
      message: `not a valid CSV file: ${reason}`,
      location: { file, line: lines ?? 1, column: 1 },
      hint: "quote a field that holds commas, quotes or newlines, and double the quotes inside it",
    });
    return { items: [], diagnostics };
  }
  const [header, ...rows] = records;
  if (!header) {
    diagnostics.push({
      message: "the CSV file is empty; it needs a header row of field names, then one row per item",
      location: { file, line: 1, column: 1 },
    });
    return { items: [], diagnostics };
  }
  const names = header.record.map((name) => name.trim());
  const headerLine = header.info.lines - newlinesIn(header.record);
  const seen = new Map<string, number>();
  names.forEach((name, index) => {
    if (name === "") {
      diagnostics.push({
        message: `the header's column ${index + 1} has no name`,
        location: { file, line: headerLine, column: 1 },
        hint: "every column needs a name: it is the field the templates read as `${{ item.NAME }}`",
      });
    } else if (seen.has(name)) {
      diagnostics.push({
        message: `the header names column \`${name}\` twice (columns ${seen.get(name)! + 1} and ${index + 1})`,
        location: { file, line: headerLine, column: 1 },
      });
    } else seen.set(name, index);
  });

  const items: SourcedItem[] = [];
  rows.forEach(({ record, info }, index) => {
    const line = info.lines - newlinesIn(record);
    const origin = { file, line, column: 1 };
    if (record.length !== names.length) {
      diagnostics.push({
        message: `row ${index + 1} has ${record.length} field${record.length === 1 ? "" : "s"}, but the header has ${names.length}`,
        location: origin,
        hint: "quote a field that holds a comma",
      });
      return;
    }
    if (isEmptyRow(record)) {
      diagnostics.push({
        message: `row ${index + 1} is empty: every field of it is empty`,
        location: origin,
        hint: EMPTY_ROW_HINT,
      });
      return;
    }
    items.push({ item: itemFrom(names, record), origin });
  });
  if (rows.length === 0) {
    diagnostics.push({
      message: "the CSV file has a header but no rows: the job would do nothing",
      location: { file, line: headerLine, column: 1 },
    });
  }
  return { items, diagnostics };
}

/** Reads a JSONL items file: one JSON object per line; blank lines are skipped. */
export function parseJsonlItems(text: string, file: string): ItemsRead {
  const diagnostics: Diagnostic[] = [];
  const items: SourcedItem[] = [];
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  lines.forEach((raw, index) => {
    const lineText = raw.trim();
    if (lineText === "") return;
    const origin = { file, line: index + 1, column: 1 };
    let value: unknown;
    try {
      // JSON.parse makes `__proto__` an own property: data, not a prototype.
      value = JSON.parse(lineText);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      // V8 says "… at position N": turn it into a column of the line as written.
      const position = /at position (\d+)/.exec(reason)?.[1];
      const indent = raw.length - raw.trimStart().length;
      const column = position === undefined ? 1 : Number(position) + indent + 1;
      diagnostics.push({
        message: `line ${index + 1} is not valid JSON: ${reason.replace(/ in JSON at position \d+.*$/, "")}`,
        location: { ...origin, column },
      });
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      const got = Array.isArray(value) ? "a list" : JSON.stringify(value);
      diagnostics.push({
        message: `line ${index + 1} must be a JSON object (one item per line), got ${got}`,
        location: origin,
      });
      return;
    }
    if (tooDeepAt(value) !== undefined) {
      diagnostics.push({
        message: `line ${index + 1} nests lists or maps more than ${MAX_NESTING_DEPTH} levels deep`,
        location: origin,
        hint: "an item's fields are text, numbers or shallow lists and maps",
      });
      return;
    }
    if (isEmptyRow(Object.values(value))) {
      diagnostics.push({
        message: `line ${index + 1} is an empty item: it has no field with a value`,
        location: origin,
        hint: EMPTY_ROW_HINT,
      });
      return;
    }
    items.push({ item: value as Record<string, unknown>, origin });
  });
  if (items.length === 0 && diagnostics.length === 0) {
    diagnostics.push({
      message: "the JSONL file has no items: the job would do nothing",
      location: { file, line: 1, column: 1 },
    });
  }
  return { items, diagnostics };
}

/** Every combination of the matrix values, the first field varying slowest (declared order). */
export function matrixItems(matrix: Record<string, readonly unknown[]>): Record<string, unknown>[] {
  let combinations: Record<string, unknown>[] = [{}];
  for (const [name, values] of Object.entries(matrix)) {
    const next: Record<string, unknown>[] = [];
    for (const partial of combinations) {
      for (const value of values) {
        const item = { ...partial };
        setOwn(item, name, value);
        next.push(item);
      }
    }
    combinations = next;
  }
  return combinations;
}
