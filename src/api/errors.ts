/**
 * Typed errors for every answer of API.md's error table, and the one function that turns a
 * refused HTTP answer into the right one. None of them is ever given the API token; text
 * that comes from a server passes through the client's redaction first (a server that
 * echoes the token back must not put it into our messages).
 */
import { AuthError, ExitCode, RunflowError, type RunflowErrorOptions } from "../errors.js";
import type { InputIssue } from "../models/types.js";
import type { Phase } from "./retry-policy.js";

/** Where an API error happened: which call, and about what. */
export interface ApiErrorContext {
  phase: Phase;
  /** The HTTP status; undefined when no answer arrived. */
  status?: number | undefined;
  /** RunComfy's `error_code` from the body, when there was one. */
  errorCode?: number | undefined;
  requestId?: string | undefined;
  modelId?: string | undefined;
}

export interface ApiErrorOptions extends RunflowErrorOptions {
  code?: string;
  exitCode?: ExitCode;
}

/** The API refused or failed a call. A failed call fails its step; the run goes on. */
export class ApiError extends RunflowError {
  readonly phase: Phase;
  readonly status: number | undefined;
  readonly errorCode: number | undefined;
  readonly requestId: string | undefined;
  readonly modelId: string | undefined;

  constructor(context: ApiErrorContext, message: string, options: ApiErrorOptions = {}) {
    super(options.code ?? "api_error", options.exitCode ?? ExitCode.stepsFailed, message, options);
    this.phase = context.phase;
    this.status = context.status;
    this.errorCode = context.errorCode;
    this.requestId = context.requestId;
    this.modelId = context.modelId;
  }
}

/**
 * The API refused the token (401, 403, or error 400004): nothing more can succeed this run.
 * An AuthError, so the CLI exits 4; it carries the same fields as ApiError.
 */
export class ApiAuthError extends AuthError {
  readonly phase: Phase;
  readonly status: number | undefined;
  readonly errorCode: number | undefined;
  readonly requestId: string | undefined;
  readonly modelId: string | undefined;

  constructor(
    context: ApiErrorContext,
    serverMessage: string | undefined,
    options: RunflowErrorOptions = {},
  ) {
    const said = serverMessage ? `: ${serverMessage}` : "";
    super(`the RunComfy API refused the API token (${statusText(context)})${said}`, {
      hint: "check RUNCOMFY_API_TOKEN (or YOUR_API_TOKEN): it must be a valid, unexpired RunComfy API key",
      ...options,
    });
    this.phase = context.phase;
    this.status = context.status;
    this.errorCode = context.errorCode;
    this.requestId = context.requestId;
    this.modelId = context.modelId;
  }
}

/** Any error of a refused or failed API call. */
export type ApiFailure = ApiError | ApiAuthError;

export function isApiFailure(error: unknown): error is ApiFailure {
  return error instanceof ApiError || error instanceof ApiAuthError;
}

function statusText(context: ApiErrorContext): string {
  const code = context.errorCode === undefined ? "" : `, error ${context.errorCode}`;
  return context.status === undefined ? `error ${context.errorCode ?? "?"}` : `HTTP ${context.status}${code}`;
}

/** 404/400 with 400001: RunComfy has no model of that id. */
export class ModelNotFoundError extends ApiError {
  constructor(context: ApiErrorContext, serverMessage: string | undefined) {
    const model = context.modelId === undefined ? "the model" : `model "${context.modelId}"`;
    super(
      context,
      `the RunComfy API has no ${model} (${statusText(context)})${serverMessage ? `: ${serverMessage}` : ""}`,
      {
        code: "api_model_not_found",
        hint: "use the id exactly as RunComfy documents it (`runflow models list` shows the known ones)",
      },
    );
  }
}

/** 422: the input failed the model's schema on the server. Nothing was created. */
export class InputRejectedError extends ApiError {
  readonly issues: readonly InputIssue[];

  constructor(context: ApiErrorContext, serverMessage: string | undefined, issues: readonly InputIssue[]) {
    const model = context.modelId === undefined ? "" : ` for ${context.modelId}`;
    const lines = issues.map((issue) =>
      issue.field === undefined ? issue.message : `${issue.field}: ${issue.message}`,
    );
    const body = lines.length > 0 ? `:\n  ${lines.join("\n  ")}` : serverMessage ? `: ${serverMessage}` : "";
    super(context, `the RunComfy API rejected the input${model} (${statusText(context)})${body}`, {
      code: "api_input_rejected",
      hint: "fix the step's input; `runflow validate` checks inputs against the model's schema before submitting",
    });
    this.issues = issues;
  }
}

/** 404001: the request id is unknown to the API, or its results expired. */
export class RequestNotFoundError extends ApiError {
  constructor(context: ApiErrorContext) {
    super(
      context,
      `request ${context.requestId ?? "(unknown id)"} is unknown to the RunComfy API or has expired (${statusText(context)})`,
      {
        code: "api_request_not_found",
        hint: "results are kept only for a limited time; submit the step again to get a new result",
      },
    );
  }
}

/** 403001: the request was made with another API token. */
export class ForbiddenRequestError extends ApiError {
  constructor(context: ApiErrorContext) {
    super(
      context,
      `request ${context.requestId ?? "(unknown id)"} belongs to another API token (${statusText(context)})`,
      {
        code: "api_request_forbidden",
        hint: "use the token the request was submitted with, or submit the step again",
      },
    );
  }
}

/** 402 / 400002: the account has no balance; nothing was submitted. */
export class NoBalanceError extends ApiError {
  constructor(context: ApiErrorContext, serverMessage: string | undefined) {
    super(
      context,
      `the RunComfy account has no balance left (${statusText(context)})${serverMessage ? `: ${serverMessage}` : ""}`,
      {
        code: "api_no_balance",
        hint: "top up the RunComfy account, then run the same command again",
      },
    );
  }
}

/** 429, and retries ran out. */
export class RateLimitedError extends ApiError {
  readonly retryAfterMs: number | undefined;

  constructor(context: ApiErrorContext, retryAfterMs: number | undefined) {
    const asked = retryAfterMs === undefined ? "" : `; it asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
    super(
      context,
      `the RunComfy API kept rate-limiting the ${context.phase} call (${statusText(context)})${asked}`,
      {
        code: "api_rate_limited",
        hint: "lower `concurrency` (or a per-model limit) in the workflow, or wait and run again",
      },
    );
    this.retryAfterMs = retryAfterMs;
  }
}

const REASON_PHRASES: Record<number, string> = {
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** 5xx. 502/503/504 usually come from a gateway with an HTML body, so nothing here needs JSON. */
export class ServerError extends ApiError {
  constructor(context: ApiErrorContext, serverMessage: string | undefined) {
    const phrase = context.status === undefined ? undefined : REASON_PHRASES[context.status];
    const said = serverMessage ? `: ${serverMessage}` : phrase ? ` (${phrase})` : "";
    super(context, `the RunComfy API failed the ${context.phase} call (${statusText(context)})${said}`, {
      code: "api_server_error",
      hint: "a problem on RunComfy's side; run the same command again later",
    });
  }
}

/** No answer arrived: the connection failed, was cut, or timed out. */
export class TransportError extends ApiError {
  /** The socket or undici error code (`ECONNREFUSED`, `UND_ERR_SOCKET`, `TimeoutError` …). */
  readonly transportCode: string | undefined;

  constructor(context: ApiErrorContext, target: string, transportCode: string | undefined, cause: unknown) {
    const why = transportCode === undefined ? "" : ` (${transportCode})`;
    super(context, `no answer from ${target} to the ${context.phase} call${why}`, {
      code: "api_unreachable",
      hint: "check the network connection and RUNCOMFY_BASE_URL, then run the same command again",
      cause,
    });
    this.transportCode = transportCode;
  }
}

/**
 * An answer arrived but cannot be used: a 2xx that is not JSON (empty, truncated, an HTML
 * page), a body past the size limit, or one that stopped arriving. Often a proxy or gateway
 * between runflow and the API; retried like a 5xx.
 */
export class UnusableAnswerError extends ApiError {
  constructor(context: ApiErrorContext, problem: string) {
    super(context, `the RunComfy API's answer to the ${context.phase} call could not be used: ${problem}`, {
      code: "api_unusable_answer",
      hint: "a problem between runflow and RunComfy (a proxy, a gateway) or on RunComfy's side; run the same command again later",
    });
  }
}

/** A download of an output file failed for good. */
export class DownloadError extends RunflowError {
  readonly url: string;
  readonly status: number | undefined;

  constructor(url: string, reason: string, options: RunflowErrorOptions & { status?: number } = {}) {
    super("download_failed", ExitCode.stepsFailed, `could not download ${url}: ${reason}`, options);
    this.url = url;
    this.status = options.status;
  }
}

/** What a refused answer said, read leniently: fields as RunComfy's clients read them. */
export interface ErrorBody {
  errorCode?: number | undefined;
  message?: string | undefined;
  detail?: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The API's error body, or an empty one when the body is not JSON (a gateway's HTML page). */
export function parseErrorBody(text: string): ErrorBody {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return {};
  }
  if (!isRecord(data)) return {};
  const code = data.error_code;
  const errorCode =
    typeof code === "number" && Number.isInteger(code)
      ? code
      : typeof code === "string" && /^\d+$/.test(code)
        ? Number(code)
        : undefined;
  const nested = isRecord(data.error) ? data.error.message : data.error;
  const message = [data.error_message, data.message, nested, data.detail].find(
    (value): value is string => typeof value === "string" && value.trim() !== "",
  );
  return { errorCode, message, detail: data.detail };
}

/** FastAPI-style `detail: [{loc, msg, type}]` as input issues; `loc` starts with "body". */
export function issuesFromDetail(detail: unknown): InputIssue[] {
  if (!Array.isArray(detail)) return [];
  return detail.filter(isRecord).map((item) => {
    const loc = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body").map(String) : [];
    const message = typeof item.msg === "string" ? item.msg : JSON.stringify(item);
    return {
      field: loc.length > 0 ? loc.join(".") : undefined,
      message,
      kind: typeof item.type === "string" ? item.type : "invalid",
    };
  });
}

/** The typed error for a refused answer (status ≥ 300) of an API call. */
export function errorFromAnswer(
  context: ApiErrorContext & { status: number },
  body: ErrorBody,
  retryAfterMs?: number,
): ApiFailure {
  const { status } = context;
  const code = body.errorCode;
  const said = body.message;
  if (code === 403001) return new ForbiddenRequestError(context);
  if (code === 400004 || status === 401 || status === 403) return new ApiAuthError(context, said);
  if (code === 400002 || status === 402) return new NoBalanceError(context, said);
  if (code === 400001) return new ModelNotFoundError(context, said);
  if (code === 404001) return new RequestNotFoundError(context);
  if (status === 404 && context.phase === "submit") return new ModelNotFoundError(context, said);
  if (
    status === 404 &&
    (context.phase === "status" || context.phase === "result" || context.phase === "cancel")
  ) {
    return new RequestNotFoundError(context);
  }
  if (status === 422) return new InputRejectedError(context, said, issuesFromDetail(body.detail));
  if (status === 429) return new RateLimitedError(context, retryAfterMs);
  if (status >= 500 && status <= 599) return new ServerError(context, said);
  // A redirect (never followed: it could carry the token away) or a 1xx: not the API speaking.
  if (status < 400) return new UnusableAnswerError(context, `HTTP ${status}, an answer the API never gives`);
  const text = said ? `: ${said}` : "";
  return new ApiError(
    context,
    `the RunComfy API refused the ${context.phase} call (${statusText(context)})${text}`,
  );
}
