/**
 * RunComfy's non-standard `validations` rules (SPEC §4): which fields carry them, and
 * whether measured facts about a medium satisfy them. Pure: measuring is api/media-probe.ts.
 */
import type { InputIssue, MediaFacts, MediaRuleName, MediaValidation, ModelEntry } from "./types.js";

/**
 * RunComfy does not say whether its "MB" is 10^6 or 2^20 bytes. We read it as 10^6: the
 * smaller limit, so a file the API could refuse under either reading never passes here
 * (a file of 16,500,000 bytes is refused, though it is under 16 MiB).
 */
export const BYTES_PER_MB = 1_000_000;

/** Field → its media rules, for every input field that has at least one. */
export function mediaRulesOf(entry: ModelEntry): Map<string, MediaValidation[]> {
  const rules = new Map<string, MediaValidation[]>();
  for (const [field, property] of Object.entries(entry.input_schema.properties)) {
    if (property.validations && property.validations.length > 0) rules.set(field, property.validations);
  }
  return rules;
}

/**
 * Fields whose value is a media URL: those with media rules, and string fields named
 * `…_url` (a catalog entry may have a media input without rules; it still must be https).
 */
export function mediaUrlFieldsOf(entry: ModelEntry): string[] {
  return Object.entries(entry.input_schema.properties)
    .filter(
      ([field, property]) =>
        (property.validations?.length ?? 0) > 0 || (property.type === "string" && field.endsWith("_url")),
    )
    .map(([field]) => field);
}

type Fact = "size" | "dimensions";

const FACT_OF_RULE: Record<MediaRuleName, Fact> = {
  "file_size_mb<": "size",
  "width_pixels>": "dimensions",
  "height_pixels>": "dimensions",
  "width/height>": "dimensions",
  "width/height<": "dimensions",
};

/** What a probe must measure to evaluate `rules`. */
export function factsNeededBy(rules: readonly MediaValidation[]): { size: boolean; dimensions: boolean } {
  const facts = new Set(rules.map((rule) => FACT_OF_RULE[rule.validation_rule]));
  return { size: facts.has("size"), dimensions: facts.has("dimensions") };
}

/** Whether the rule holds, or undefined when the fact it needs was not measured. */
function holds(rule: MediaValidation, facts: MediaFacts): boolean | undefined {
  const limit = rule.validation_value;
  const { sizeBytes, width, height } = facts;
  switch (rule.validation_rule) {
    case "file_size_mb<":
      return sizeBytes === undefined ? undefined : sizeBytes < limit * BYTES_PER_MB;
    case "width_pixels>":
      return width === undefined ? undefined : width > limit;
    case "height_pixels>":
      return height === undefined ? undefined : height > limit;
    case "width/height>":
      return width === undefined || height === undefined || height === 0 ? undefined : width / height > limit;
    case "width/height<":
      return width === undefined || height === undefined || height === 0 ? undefined : width / height < limit;
  }
}

function measured(fact: Fact, facts: MediaFacts): string {
  if (fact === "size") return `${facts.sizeBytes} bytes`;
  return `${facts.width}×${facts.height} px`;
}

const UNMEASURED: Record<Fact, string> = {
  size: "the file size (the server sent no Content-Length or Content-Range)",
  dimensions: "the pixel dimensions (not an image format runflow can read)",
};

/**
 * The issues of one field's medium against its rules, each with the schema's own
 * `validation_error` as the message. An unmeasured fact is an issue, never a pass. Rules
 * sharing a message (Hailuo's width and height rules), and rules missing the same fact, are
 * reported once.
 */
export function evaluateMediaRules(
  field: string,
  rules: readonly MediaValidation[],
  facts: MediaFacts,
): InputIssue[] {
  const issues: InputIssue[] = [];
  const seen = new Set<string>();
  const report = (issue: InputIssue): void => {
    const key = `${issue.kind}\u0000${issue.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    issues.push(issue);
  };
  for (const rule of rules) {
    const fact = FACT_OF_RULE[rule.validation_rule];
    const verdict = holds(rule, facts);
    if (verdict === undefined) {
      report({
        field,
        kind: "media_unknown",
        message: `input.${field}: could not measure ${UNMEASURED[fact]} of ${facts.url}, which its rules need`,
      });
    } else if (!verdict) {
      report({ field, kind: "media", message: rule.validation_error, detail: measured(fact, facts) });
    }
  }
  return issues;
}

/**
 * A dotted-quad IPv4 address, as node:net's `isIPv4` reads one (its pattern): node:net
 * itself is not loaded for this (≈ 1 ms of `status`'s start, docs/decisions.md "Start-up").
 */
const IPV4 =
  /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;

/** localhost, 127.0.0.0/8 and ::1: the only hosts plain http is allowed for (the emulator). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === "localhost" || host === "[::1]" || host === "::1") return true;
  return IPV4.test(host) && host.startsWith("127.");
}

/** Why `url` cannot be a media input (not a URL, or not https off loopback), or undefined if it can. */
export function checkMediaUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not a URL; media inputs must be public https URLs`;
  }
  if (parsed.protocol === "https:") return undefined;
  if (parsed.protocol === "http:" && isLoopbackHost(parsed.hostname)) return undefined;
  if (parsed.protocol === "http:") {
    return `${url} uses plain http; media inputs must be https (http is allowed only on loopback)`;
  }
  return `${url} is not an https URL; media inputs must be public https URLs`;
}
