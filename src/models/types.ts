/**
 * A model as RunComfy's catalog describes it (SPEC §8): the schemas are kept exactly as
 * published, non-standard parts (`validations`, `title`) included.
 */

/** One of RunComfy's non-standard media rules, checked on the media behind a URL. */
export interface MediaValidation {
  validation_rule: MediaRuleName;
  validation_value: number;
  validation_error: string;
}

export const MEDIA_RULES = [
  "file_size_mb<",
  "width_pixels>",
  "height_pixels>",
  "width/height>",
  "width/height<",
] as const;
export type MediaRuleName = (typeof MEDIA_RULES)[number];

export interface ModelInputProperty {
  type?: string;
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  maxLength?: number;
  validations?: MediaValidation[];
  [keyword: string]: unknown;
}

export interface ModelInputSchema {
  type: "object";
  title?: string;
  required?: string[];
  properties: Record<string, ModelInputProperty>;
  [keyword: string]: unknown;
}

export interface ModelEntry {
  model_id: string;
  input_schema: ModelInputSchema;
  output_schema?: Record<string, unknown>;
  /** Where the entry was loaded from (a file path), for messages. Not part of the catalog shape. */
  source?: string;
}

/** One problem with a model input, in the schema's own words where it has them. */
export interface InputIssue {
  /** The input field concerned (top-level key of the body); undefined for the body as a whole. */
  field?: string | undefined;
  message: string;
  /** e.g. `required`, `type`, `enum`, `maxLength`, `unknown_field`, `media`, `media_unreachable`. */
  kind: string;
  /** What was measured, for a `media` issue whose message is the schema's own (e.g. `200×200 px`). */
  detail?: string | undefined;
  /**
   * For `media_unreachable` with no HTTP answer at all (DNS, refused, timeout): the origin
   * (`https://cdn.example.com`) that gave none, so callers can say it once for all its URLs.
   */
  unreachableOrigin?: string | undefined;
}

/** Facts about the media behind a URL, as far as a probe could learn them. */
export interface MediaFacts {
  url: string;
  sizeBytes?: number | undefined;
  width?: number | undefined;
  height?: number | undefined;
  contentType?: string | undefined;
}
