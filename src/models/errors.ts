import { ExitCode, RunflowError, type RunflowErrorOptions } from "../errors.js";

/** A model schema file (or catalog entry) that runflow cannot use: nothing was submitted. */
export class ModelSchemaError extends RunflowError {
  constructor(message: string, options?: RunflowErrorOptions) {
    super("model_schema_invalid", ExitCode.invalid, message, options);
  }
}

/** A workflow or command names a model runflow has no schema for. */
export class UnknownModelError extends RunflowError {
  readonly modelId: string;
  readonly suggestions: readonly string[];

  constructor(modelId: string, suggestions: readonly string[], options?: RunflowErrorOptions) {
    const didYouMean =
      suggestions.length > 0 ? `; did you mean ${suggestions.map((s) => `"${s}"`).join(" or ")}?` : "";
    super("unknown_model", ExitCode.invalid, `no schema for model "${modelId}"${didYouMean}`, options);
    this.modelId = modelId;
    this.suggestions = suggestions;
  }
}

/** The media behind an input URL could not be fetched for a preflight check. */
export class MediaUnreachableError extends RunflowError {
  readonly url: string;
  /** No HTTP answer at all (DNS, refused, timeout): every URL on the same host fails alike. */
  readonly noAnswer: boolean;

  constructor(url: string, reason: string, options?: RunflowErrorOptions & { noAnswer?: boolean }) {
    super("media_unreachable", ExitCode.invalid, `could not fetch ${url}: ${reason}`, options);
    this.url = url;
    this.noAnswer = options?.noAnswer ?? false;
  }
}
