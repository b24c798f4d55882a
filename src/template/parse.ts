/**
 * The template syntax (SPEC §4): `${{ path }}` inside a string, where `path` is a root name
 * followed by `.name`, `[0]` or `["any key"]` segments; `$${{` writes a literal `${{`.
 * Parsing only: nothing here looks a value up, and nothing is ever evaluated as code.
 */

/** One step into a value: an object key or a list index. */
export type PathSegment = string | number;

/** One `${{ … }}` occurrence. */
export interface TemplateRef {
  /** The template as written, e.g. `${{ item.prompt }}`: for messages and for plan output. */
  source: string;
  /** The root name (`item`, `vars`, `steps`, …), not yet checked against the known roots. */
  root: string;
  /** The segments after the root. */
  path: PathSegment[];
}

export type TemplatePart = { text: string; ref?: undefined } | { text?: undefined; ref: TemplateRef };

export interface ParsedTemplate {
  parts: TemplatePart[];
  /** The whole string is one template: its value keeps its type instead of becoming text. */
  single: TemplateRef | undefined;
}

export class TemplateSyntaxError extends Error {
  /** 0-based offset into the string where the problem is. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message);
    this.name = "TemplateSyntaxError";
    this.offset = offset;
  }
}

const OPEN = "${{";
const CLOSE = "}}";
const NAME = /^[A-Za-z0-9_-]+/;

/**
 * Makes `text` literal: every `${{` becomes `$${{`, which parses back to `${{`. Values put
 * into a string that is resolved again later (a partially resolved input) are escaped, so
 * data from an item can never become a template.
 */
export function escapeTemplateText(text: string): string {
  // A replacer function: in a replacement string `$$` would mean one `$`.
  return text.includes(OPEN) ? text.replaceAll(OPEN, () => `$${OPEN}`) : text;
}

/** Cheap test used before parsing: most strings in a workflow and every item value have no template. */
export function hasTemplate(text: string): boolean {
  return text.includes(OPEN);
}

function parsePath(expression: string, source: string, offset: number): TemplateRef {
  const fail: (what: string) => never = (what) => {
    throw new TemplateSyntaxError(`${source}: ${what}; a template is a path like \`item.prompt\``, offset);
  };
  const rootMatch = NAME.exec(expression);
  if (!rootMatch) fail(expression === "" ? "the template is empty" : `\`${expression}\` is not a path`);
  const root = rootMatch[0];
  const path: PathSegment[] = [];
  let rest = expression.slice(root.length);
  while (rest.length > 0) {
    if (rest.startsWith(".")) {
      const name = NAME.exec(rest.slice(1));
      if (!name) fail(`expected a name after \`.\` in \`${expression}\``);
      path.push(name[0]);
      rest = rest.slice(1 + name[0].length);
      continue;
    }
    const index = /^\[(\d+)\]/.exec(rest);
    if (index) {
      path.push(Number(index[1]));
      rest = rest.slice(index[0].length);
      continue;
    }
    const quoted = /^\[(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\]/.exec(rest);
    if (quoted) {
      path.push((quoted[1] ?? quoted[2] ?? "").replace(/\\(.)/g, "$1"));
      rest = rest.slice(quoted[0].length);
      continue;
    }
    fail(`unexpected \`${rest}\` in \`${expression}\` (no operators, calls or filters)`);
  }
  return { source, root, path };
}

/**
 * Splits `text` into literal text and template references. Throws TemplateSyntaxError for
 * an unclosed `${{` or anything inside that is not a plain path.
 */
export function parseTemplate(text: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let position = 0;
  let literal = "";
  for (;;) {
    const open = text.indexOf(OPEN, position);
    if (open < 0) break;
    if (open > 0 && text[open - 1] === "$") {
      // `$${{` is a literal `${{` (see escapeTemplateText).
      literal += text.slice(position, open - 1) + OPEN;
      position = open + OPEN.length;
      continue;
    }
    const close = text.indexOf(CLOSE, open + OPEN.length);
    if (close < 0) {
      throw new TemplateSyntaxError(
        `\`${text.slice(open, open + 40)}\`: \`\${{\` is not closed by \`}}\``,
        open,
      );
    }
    if (open > position || literal !== "") parts.push({ text: literal + text.slice(position, open) });
    literal = "";
    const source = text.slice(open, close + CLOSE.length);
    parts.push({ ref: parsePath(text.slice(open + OPEN.length, close).trim(), source, open) });
    position = close + CLOSE.length;
  }
  if (position < text.length || literal !== "") parts.push({ text: literal + text.slice(position) });
  const only = parts.length === 1 ? parts[0] : undefined;
  return { parts, single: only?.ref };
}

const cache = new Map<string, ParsedTemplate>();
const CACHE_LIMIT = 10_000;

/**
 * parseTemplate with a cache: the same few template strings of a workflow are resolved once
 * per instance, possibly 100,000 times. Only workflow text goes through here, never item
 * values, so the cache stays small; the limit is a guard, not a tuning knob.
 */
export function parseTemplateCached(text: string): ParsedTemplate {
  let parsed = cache.get(text);
  if (!parsed) {
    parsed = parseTemplate(text);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(text, parsed);
  }
  return parsed;
}

/** `item.prompt`, `steps.animate.output.videos[0]`, `item["first name"]`. */
export function formatPath(root: string, path: readonly PathSegment[]): string {
  let text = root;
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) text += `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}
