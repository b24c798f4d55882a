/** The RunComfy Model API client (API.md): submit, poll, result, cancel, catalog, download. */
export {
  RunComfyClient,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY,
  DEFAULT_MAX_ANSWER_BYTES,
  type CallOptions,
  type SubmitOptions,
  type RetryOptions,
  type RunComfyClientOptions,
  type WaitOptions,
} from "./client.js";
export {
  isTerminalResult,
  isTerminalStatus,
  serverDurationMs,
  type CancelOutcome,
  type RequestResult,
  type RequestStatus,
  type ResultState,
  type StatusState,
  type SubmitOutcome,
} from "./answers.js";
export {
  ApiAuthError,
  ApiError,
  DownloadError,
  ForbiddenRequestError,
  InputRejectedError,
  isApiFailure,
  ModelNotFoundError,
  NoBalanceError,
  RateLimitedError,
  RequestNotFoundError,
  ServerError,
  TransportError,
  UnusableAnswerError,
  type ApiErrorContext,
  type ApiFailure,
} from "./errors.js";
export {
  backoff,
  classify,
  DEFAULT_POLL_POLICY,
  nextPollDelay,
  parseRetryAfter,
  PHASES,
  RETRY_TABLE,
  transportErrorCode,
  type BackoffPolicy,
  type Classification,
  type ClassifyInput,
  type FailureKind,
  type Phase,
  type PollHint,
  type PollPolicy,
  type RetryAction,
} from "./retry-policy.js";
export { AnswerStalledError, AnswerTooLargeError, readBoundedText } from "./bounded-body.js";
export { downloadFile, type DownloadedFile, type DownloadOptions } from "./download.js";
export { createClientFromEnv, readApiToken, type ClientFromEnvOptions } from "./env.js";
export { DEFAULT_BASE_URL, encodeModelId } from "./urls.js";
