import type { InputIssue } from "./types.js";

/**
 * One line for a user. Messages of `media` issues are the schema's own words, which do not
 * name the field; every other kind's message already starts with `input.FIELD`.
 */
export function formatInputIssue(issue: InputIssue): string {
  if (issue.message.startsWith("input.") || issue.field === undefined) return issue.message;
  const measured = issue.detail ? ` (measured: ${issue.detail})` : "";
  return `input.${issue.field}: ${issue.message}${measured}`;
}
