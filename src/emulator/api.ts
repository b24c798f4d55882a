/**
 * The RunComfy Model API endpoints (API.md): auth, submit, status, result, cancel and the
 * model catalog. Each handler takes the shared core and answers a Reply.
 */
import { catalogShapeOf, validateModelInput, type InputIssue, type ModelEntry } from "../models/index.js";
import { sampleDuration } from "./config.js";
import type { EmulatorCore } from "./core.js";
import { DEFAULT_FAILURE_MESSAGE, parseMarkers, type PromptMarkers } from "./markers.js";
import { mp4SizeProblem } from "./mp4.js";
import { priceFields, priceOf, requestCost } from "./prices.js";
import { apiError, ErrorCode, json, type Reply } from "./replies.js";
import type { EmulatedRequest, OutputSpec, Phase, RequestState } from "./request-book.js";

/** The size of an image output when no marker asks for another. */
export const DEFAULT_OUTPUT_IMAGE = { width: 1280, height: 720 } as const;

/** The caller's owner index, or the 401 to answer. */
export function authenticate(core: EmulatorCore, header: string | undefined): number | Reply {
  if (header === undefined || header.trim() === "") {
    return apiError(401, ErrorCode.badToken, "missing API token: send `Authorization: Bearer <token>`");
  }
  const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (token === undefined) {
    return apiError(401, ErrorCode.badToken, "the Authorization header must read `Bearer <token>`");
  }
  if (core.config.token !== null && token !== core.config.token) {
    return apiError(401, ErrorCode.badToken, "invalid or expired API token");
  }
  return core.ownerOf(token);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A video model unless the id speaks of images only (`…/text-to-image`, `flux…`). */
export function outputKindOf(modelId: string): OutputSpec["kind"] {
  if (/video/i.test(modelId)) return "video";
  return /image|img|flux|sdxl|stable-diffusion|imagen/i.test(modelId) ? "image" : "video";
}

export function outputFileName(output: OutputSpec): string {
  return output.kind === "video" ? "video.mp4" : "image.png";
}

/** Shared by every request without an output marker: a hundred thousand requests, one object. */
const PLAIN_VIDEO: OutputSpec = Object.freeze({ kind: "video" });

function outputSpec(modelId: string, markers: PromptMarkers): OutputSpec {
  const spec = mediaSpec(modelId, markers);
  return markers.brokenOutput === undefined ? spec : { ...spec, broken: markers.brokenOutput };
}

function mediaSpec(modelId: string, markers: PromptMarkers): OutputSpec {
  if (outputKindOf(modelId) === "image") {
    return { kind: "image", ...(markers.outputSize ?? DEFAULT_OUTPUT_IMAGE) };
  }
  return markers.outputBytes === undefined ? PLAIN_VIDEO : { kind: "video", bytes: markers.outputBytes };
}

function markerIssues(modelId: string, markers: PromptMarkers, problems: string[]): string[] {
  const all = [...problems];
  const kind = outputKindOf(modelId);
  if (markers.outputBytes !== undefined) {
    if (kind !== "video") all.push("[emulator:output-bytes=N] applies to video outputs only");
    else {
      const problem = mp4SizeProblem(markers.outputBytes);
      if (problem) all.push(`[emulator:output-bytes=${markers.outputBytes}]: ${problem}`);
    }
  }
  if (markers.outputSize !== undefined && kind !== "image") {
    all.push("[emulator:output-size=WxH] applies to image outputs only");
  }
  return all;
}

function validationDetail(issues: readonly InputIssue[], markerProblems: readonly string[]): unknown[] {
  return [
    ...issues.map((issue) => ({
      loc: issue.field === undefined ? ["body"] : ["body", issue.field],
      msg: issue.message,
      type: issue.kind,
    })),
    ...markerProblems.map((msg) => ({ loc: ["body", "prompt"], msg, type: "emulator_marker" })),
  ];
}

export interface SubmitOutcome {
  reply: Reply;
  /** The request was created and its answer is to be lost (`[emulator:lost-answer]`). */
  loseAnswer: boolean;
}

function requestUrls(core: EmulatorCore, requestId: string) {
  const base = `${core.baseUrl}/v1/requests/${encodeURIComponent(requestId)}`;
  return { status_url: `${base}/status`, result_url: `${base}/result`, cancel_url: `${base}/cancel` };
}

function unknownModel(core: EmulatorCore, modelId: string): Reply {
  const close = core.registry.suggest(modelId);
  const hint = close.length > 0 ? `; did you mean ${close.map((id) => `"${id}"`).join(" or ")}?` : "";
  return apiError(404, ErrorCode.badModelId, `model "${modelId}" not found${hint}`);
}

export function submit(
  core: EmulatorCore,
  requestedId: string,
  owner: number,
  rawBody: string,
): SubmitOutcome {
  const rejected = (reply: Reply): SubmitOutcome => ({ reply, loseAnswer: false });
  const entry: ModelEntry | undefined = core.registry.get(requestedId);
  if (!entry) return rejected(unknownModel(core, requestedId));
  // The registry's own string, not the one decoded from this URL: requests share it.
  const modelId = entry.model_id;

  let body: unknown;
  try {
    body = JSON.parse(rawBody);
  } catch {
    return rejected(apiError(400, ErrorCode.badRequest, "the request body is not valid JSON"));
  }
  if (!isPlainObject(body)) {
    return rejected(
      apiError(400, ErrorCode.badRequest, "the request body must be a JSON object of the model's inputs"),
    );
  }

  const { issues } = validateModelInput(entry, body);
  const { markers, problems } =
    typeof body.prompt === "string" ? parseMarkers(body.prompt) : { markers: {}, problems: [] };
  const markerProblems = markerIssues(modelId, markers, problems);
  if (issues.length > 0 || markerProblems.length > 0) {
    const first = issues[0]?.message ?? markerProblems[0] ?? "";
    const more =
      issues.length + markerProblems.length > 1
        ? ` (and ${issues.length + markerProblems.length - 1} more)`
        : "";
    return rejected(
      apiError(
        422,
        ErrorCode.invalidInput,
        `invalid input for ${modelId}: ${first}${more}`,
        validationDetail(issues, markerProblems),
      ),
    );
  }
  if (core.config.noBalance) {
    return rejected(apiError(402, ErrorCode.noBalance, "insufficient balance: top up your RunComfy account"));
  }

  const request = createRequest(core, modelId, owner, markers);
  core.submissions.record(modelId, body, request.id);
  const reply = json(200, { request_id: request.id, ...requestUrls(core, request.id) });
  return { reply, loseAnswer: markers.lostAnswer === true };
}

function createRequest(
  core: EmulatorCore,
  modelId: string,
  owner: number,
  markers: PromptMarkers,
): EmulatedRequest {
  const { config, random } = core;
  const now = core.now();
  // random() is drawn only where a setting asks for chance, so an injected sequence stays readable.
  const queueDelay = sampleDuration(config.queueDelay, random);
  const durationMs = markers.durationMs ?? sampleDuration(config.duration, random);
  const failsByChance = config.failRate > 0 && markers.fail === undefined && random() < config.failRate;
  return core.book.add({
    id: core.newRequestId(),
    modelId,
    owner,
    createdAt: now,
    readyAt: now + queueDelay,
    durationMs,
    failure: markers.fail ?? (failsByChance ? DEFAULT_FAILURE_MESSAGE : undefined),
    output: outputSpec(modelId, markers),
    hold: markers.hold !== undefined && core.holds(markers.hold) ? markers.hold : undefined,
    costUsd: requestCost(config, modelId),
  });
}

export type Lookup = { request: EmulatedRequest; state: RequestState } | Reply;

export function isReply(value: unknown): value is Reply {
  return isPlainObject(value) && typeof value.type === "string";
}

/** The caller's request and its state, or the 403/404 to answer. */
export function lookUp(core: EmulatorCore, requestId: string, owner: number): Lookup {
  const request = core.book.get(requestId);
  const notFound = apiError(
    404,
    ErrorCode.requestNotFound,
    `request ${requestId} not found (unknown or expired)`,
  );
  if (!request) return notFound;
  if (request.owner !== owner) {
    return apiError(403, ErrorCode.notYours, `request ${requestId} belongs to another API token`);
  }
  const state = core.stateOf(request);
  return state === "gone" ? notFound : { request, state };
}

/** /status speaks its own vocabulary: `completed`, never `succeeded`; `failed` only if configured. */
function statusWord(core: EmulatorCore, phase: Phase): string {
  if (phase === "succeeded") return "completed";
  if (phase === "failed") return core.config.statusFailedAs;
  return phase;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function status(
  core: EmulatorCore,
  { request, state }: { request: EmulatedRequest; state: RequestState },
): Reply {
  const { status_url, result_url } = requestUrls(core, request.id);
  const body: Record<string, unknown> = { request_id: request.id, status: statusWord(core, state.phase) };
  if (state.queuePosition !== undefined) body.queue_position = state.queuePosition;
  return json(200, { ...body, status_url, result_url });
}

export function outputUrl(core: EmulatorCore, request: EmulatedRequest): string {
  return `${core.baseUrl}/files/${encodeURIComponent(request.id)}/${outputFileName(request.output)}`;
}

export function result(
  core: EmulatorCore,
  { request, state }: { request: EmulatedRequest; state: RequestState },
  includeCost = false,
): Reply {
  const body: Record<string, unknown> = { request_id: request.id, status: state.phase };
  if (state.phase === "succeeded") {
    const broken = request.output.broken;
    if (broken === "empty") body.output = {};
    else if (broken === "text") body.output = "done";
    else if (broken === undefined) body.output = { [request.output.kind]: outputUrl(core, request) };
  }
  if (state.phase === "failed") {
    const message = request.failure ?? DEFAULT_FAILURE_MESSAGE;
    body.error = core.config.resultErrorAs === "string" ? message : { message };
  }
  body.created_at = iso(request.createdAt);
  if (state.finishedAt !== undefined) body.finished_at = iso(state.finishedAt);
  // A request that ended is billed: what it cost when it succeeded, nothing otherwise.
  const ended = state.phase === "succeeded" || state.phase === "failed" || state.phase === "cancelled";
  if (includeCost && ended && core.config.reportCost && request.costUsd !== undefined) {
    body.cost = state.phase === "succeeded" ? request.costUsd : 0;
  }
  return json(200, body);
}

export function cancel(core: EmulatorCore, request: EmulatedRequest): Reply {
  const outcome = core.book.cancel(request, core.now());
  const state = core.stateOf(request);
  const phase: Phase = state === "gone" ? "cancelled" : state.phase;
  return json(202, { request_id: request.id, status: statusWord(core, phase), outcome });
}

function catalogEntry(entry: ModelEntry, includeSchema: boolean): Record<string, unknown> {
  const catalog = catalogShapeOf(entry);
  return includeSchema ? { ...catalog } : { model_id: catalog.model_id };
}

function wholeNumber(text: string | null, fallback: number): number | undefined {
  if (text === null || text === "") return fallback;
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/**
 * `GET /v1/models`: `limit`/`offset` paging as RunComfy's CLI sends it, `search` (a
 * case-insensitive substring of the id) and `include_schema`. Pages hold at most
 * `modelsPageSize` models, so clients must page by `total`, not by a full page.
 */
export function listModels(core: EmulatorCore, query: URLSearchParams): Reply {
  const includeSchema = ["true", "1"].includes(query.get("include_schema") ?? "");
  const search = (query.get("search") ?? "").trim().toLowerCase();
  const pageSize = core.config.modelsPageSize;
  const limit = wholeNumber(query.get("limit"), pageSize);
  const offset = wholeNumber(query.get("offset"), 0);
  if (limit === undefined || offset === undefined || limit === 0) {
    return apiError(
      400,
      ErrorCode.badRequest,
      "`limit` must be a whole number ≥ 1 and `offset` a whole number ≥ 0",
    );
  }
  const matching = core.registry.list().filter((entry) => entry.model_id.toLowerCase().includes(search));
  const pageLimit = Math.min(limit, pageSize);
  const page = matching.slice(offset, offset + pageLimit).map((entry) => catalogEntry(entry, includeSchema));
  return json(200, { models: page, total: matching.length, limit: pageLimit, offset });
}

/** The model's catalog entry with its price (API.md "Prices and cost"); no price fields when it has none. */
export function getModel(core: EmulatorCore, modelId: string): Reply {
  const entry = core.registry.get(modelId);
  if (!entry) return unknownModel(core, modelId);
  const price = priceOf(core.config, entry.model_id);
  const priced = price ? priceFields(entry.model_id, price, core.config.outputSeconds) : {};
  return json(200, { ...catalogEntry(entry, true), ...priced });
}
