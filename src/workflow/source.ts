/**
 * Stage (a): the YAML text → a document that still knows where every value was written,
 * so each later problem can point at `file:line:column`.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Alias,
  type Document,
  type Node,
} from "yaml";
import type { Diagnostic, SourceLocation } from "../errors.js";
import type { PathSegment } from "../template/parse.js";
import { MAX_NESTING_DEPTH, tooDeepAt } from "./nesting.js";

/**
 * Aliases a document may expand. Anchors are handy for shared inputs; thousands of them are
 * a "billion laughs" document, refused before it can exhaust memory.
 */
export const MAX_ALIAS_COUNT = 1_000;

/** A parsed workflow document and a way back from a path inside it to its location. */
export interface SourceMap {
  /** The file as the user named it (for messages). */
  file: string;
  /**
   * The location of the value at `path`, or of its key when `part` is `key`. A path that
   * leaves the document (a default, a merged key) falls back to its nearest written ancestor.
   */
  locate(path: readonly PathSegment[], part?: "key" | "value"): SourceLocation;
}

export interface ParsedSource {
  /** The document as plain data; undefined when the YAML itself is broken. */
  data: unknown;
  source: SourceMap;
  diagnostics: Diagnostic[];
}

function keyMatches(key: unknown, segment: PathSegment): boolean {
  const value = isScalar(key) ? key.value : key;
  return String(value) === String(segment);
}

function sourceMap(file: string, doc: Document | undefined, lines: LineCounter): SourceMap {
  const at = (offset: number): SourceLocation => {
    const { line, col } = lines.linePos(offset);
    return { file, line, column: col };
  };
  return {
    file,
    locate(path, part = "value") {
      let node: unknown = doc?.contents;
      let found: Node | undefined = isMap(node) || isSeq(node) || isScalar(node) ? node : undefined;
      for (let index = 0; index < path.length && node; index++) {
        if (isAlias(node) && doc) node = node.resolve(doc);
        const segment = path[index]!;
        let next: unknown;
        if (isMap(node)) {
          const pair = node.items.find((item) => keyMatches(item.key, segment));
          if (!pair) break;
          const wantKey = part === "key" && index === path.length - 1;
          next = wantKey ? pair.key : pair.value;
        } else if (isSeq(node) && typeof segment === "number") {
          next = node.items[segment];
        }
        if (!next || !(isMap(next) || isSeq(next) || isScalar(next) || isAlias(next))) break;
        found = next;
        node = next;
      }
      const offset = found?.range?.[0];
      return offset === undefined ? { file, line: 1, column: 1 } : at(offset);
    },
  };
}

/** The key written at `offset` (for a duplicate key message), quotes removed. */
function keyAt(text: string, offset: number): string | undefined {
  const key = /^("[^"\n]*"|'[^'\n]*'|[^:\n#]+)/.exec(text.slice(offset, offset + 200))?.[1]?.trim();
  return key ? key.replace(/^["']|["']$/g, "") : undefined;
}

/**
 * Where a YAML problem is, as the user sees it. The yaml package puts an indentation error
 * at the start of the line's indentation (column 1); the mistake is the misplaced key, so a
 * position inside leading spaces moves to the line's first non-blank character. A tab stays
 * where it is: the tab is the mistake.
 */
function problemOffset(text: string, offset: number): number {
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  if (!/^ *$/.test(text.slice(lineStart, offset))) return offset;
  let first = offset;
  while (text[first] === " ") first++;
  return first < text.length && text[first] !== "\n" && text[first] !== "\r" ? first : offset;
}

/**
 * The first alias that refers to a value it is itself part of (`vars: &v { self: *v }`):
 * such a document is an endless value, which no part of runflow could walk. An alias refers
 * to the last node before it with its anchor; a cycle means that node is one of the alias's
 * ancestors.
 */
function selfReferencingAlias(doc: Document): Alias | undefined {
  const anchored = new Map<string, Node>();
  let found: Alias | undefined;
  visit(doc, {
    Node(_key, node, path) {
      if (isAlias(node)) {
        const target = anchored.get(node.source);
        if (target && path.includes(target)) {
          found = node;
          return visit.BREAK;
        }
      } else if (node.anchor) anchored.set(node.anchor, node);
      return undefined;
    },
  });
  return found;
}

function firstLine(message: string): string {
  // The yaml package appends " at line L, column C:" and a code frame; we print our own location.
  return (message.split("\n")[0] ?? message).replace(/ at line \d+, column \d+:?$/, "");
}

/** Parses workflow text. Never throws: every problem is a diagnostic with its location. */
export function parseWorkflowSource(text: string, file: string): ParsedSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    keepSourceTokens: true,
    // A key written twice is a mistake: the later one would silently win.
    uniqueKeys: true,
    merge: true,
    prettyErrors: false,
  });
  const source = sourceMap(file, doc, lines);
  const diagnostics: Diagnostic[] = [];
  const locationOf = (offset: number | undefined): SourceLocation => {
    if (offset === undefined) return { file, line: 1, column: 1 };
    const { line, col } = lines.linePos(problemOffset(text, offset));
    return { file, line, column: col };
  };
  // Warnings are errors here too: an unknown tag (`!!js/function`) would otherwise become a string.
  const problems = [...doc.errors, ...doc.warnings];
  // The yaml package gives up on very deep nesting with the stack overflow's message; the
  // errors after it are its echoes, how many depending on the stack left.
  const overflow = problems.find((problem) => /maximum call stack/i.test(problem.message));
  if (overflow) {
    diagnostics.push({
      message: `YAML: lists or maps nested too deeply (more than ${MAX_NESTING_DEPTH} levels are refused)`,
      location: locationOf(overflow.pos[0]),
    });
  }
  for (const problem of overflow ? [] : problems) {
    const key = problem.code === "DUPLICATE_KEY" ? keyAt(text, problem.pos[0]) : undefined;
    diagnostics.push({
      message: key
        ? `YAML: key \`${key}\` appears twice in the same map (keys must be unique; the second would silently win)`
        : `YAML: ${firstLine(problem.message)}`,
      location: locationOf(problem.pos[0]),
    });
  }
  if (diagnostics.length > 0) return { data: undefined, source, diagnostics };

  if (doc.contents === null) {
    diagnostics.push({
      message: "the file is empty; a workflow needs at least `version: 1` and `jobs:`",
      location: { file, line: 1, column: 1 },
    });
    return { data: undefined, source, diagnostics };
  }
  const cycle = selfReferencingAlias(doc);
  if (cycle) {
    diagnostics.push({
      message: `YAML: the alias \`*${cycle.source}\` is inside the value its anchor \`&${cycle.source}\` names, so that value would contain itself without end`,
      location: locationOf(cycle.range?.[0]),
      hint: "an alias can repeat a value written before it, not the value it is part of",
    });
    return { data: undefined, source, diagnostics };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    let firstAlias: number | undefined;
    visit(doc, {
      Alias(_key, node) {
        firstAlias = node.range?.[0];
        return visit.BREAK;
      },
    });
    diagnostics.push({
      message: `YAML: the aliases expand to too many values (${reason.toLowerCase()})`,
      location: locationOf(firstAlias),
      hint: `write the values out, or nest fewer anchors (an alias may expand to at most ${MAX_ALIAS_COUNT} values)`,
    });
    return { data: undefined, source, diagnostics };
  }
  const deep = tooDeepAt(data);
  if (deep) {
    diagnostics.push({
      // The first few steps of the path name the place; the rest is `[0][0][0]…`.
      message: `${formatDocPath(deep.slice(0, 6))}${deep.length > 6 ? "…" : ""}: lists or maps nested more than ${MAX_NESTING_DEPTH} levels deep`,
      location: source.locate(deep),
    });
    return { data: undefined, source, diagnostics };
  }
  return { data, source, diagnostics };
}

/** `jobs.teaser.steps[0].input["image url"]`: how diagnostics name a place in the document. */
export function formatDocPath(path: readonly PathSegment[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}
