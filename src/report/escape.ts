/**
 * Escaping of user data (prompts, errors, job keys, paths) for the report formats. Every
 * value that did not come from runflow's own templates goes through one of these.
 */

const HTML_ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ENTITIES[char] ?? char);
}

/**
 * Safe as Markdown inline text: HTML is neutralised (Markdown viewers render raw HTML),
 * the characters that start emphasis, code, links or table cells are backslash-escaped,
 * and line breaks become spaces so a value cannot leave its table cell or list item.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_[\]|#]/g, (char) => `\\${char}`)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\r?\n|\r/g, " ");
}

/** A Markdown code block that the text cannot close: the fence is longer than any backtick run in it. */
export function markdownCodeBlock(text: string): string {
  const longestRun = Math.max(0, ...[...text.matchAll(/`+/g)].map((match) => match[0].length));
  const fence = "`".repeat(Math.max(3, longestRun + 1));
  return `${fence}\n${text}\n${fence}`;
}
