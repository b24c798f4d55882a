/**
 * `/__emulator/…`: what tests use to inspect and steer the emulator. No auth (it listens on
 * loopback only), never logged, never faulted.
 */
import { isRunflowError } from "../errors.js";
import { outputUrl } from "./api.js";
import { publicConfig } from "./config.js";
import type { EmulatorCore } from "./core.js";
import { json, type Reply } from "./replies.js";

function problem(status: number, message: string): Reply {
  return json(status, { error: message });
}

function requestDetails(core: EmulatorCore, requestId: string): Reply {
  const request = core.book.get(requestId);
  if (!request) return problem(404, `no request ${requestId}`);
  const state = core.stateOf(request);
  const gone = state === "gone";
  return json(200, {
    request_id: request.id,
    model_id: request.modelId,
    phase: gone ? "expired" : state.phase,
    queue_position: gone ? undefined : state.queuePosition,
    created_at: new Date(request.createdAt).toISOString(),
    started_at: request.startedAt === undefined ? undefined : new Date(request.startedAt).toISOString(),
    duration_ms: request.durationMs,
    failure: request.failure,
    cost_usd: request.costUsd,
    output_url: outputUrl(core, request),
  });
}

function parseJson(rawBody: string): unknown {
  return rawBody.trim() === "" ? {} : (JSON.parse(rawBody) as unknown);
}

export function control(
  core: EmulatorCore,
  method: string,
  segments: readonly string[],
  rawBody: string,
): Reply {
  const [first, second, third] = segments;
  const path = segments.join("/");
  const is = (wantedMethod: string, wantedPath: string) => method === wantedMethod && path === wantedPath;
  if (is("GET", "requests")) return json(200, core.log.list());
  if (is("GET", "submissions")) return json(200, core.submissions.stats());
  if (is("GET", "state")) return json(200, core.state());
  if (is("GET", "config")) return json(200, publicConfig(core.config));
  if (method === "POST" && first === "release" && segments.length <= 2) {
    let name: string | undefined;
    try {
      name = second === undefined ? undefined : decodeURIComponent(second);
    } catch {
      return problem(404, `no hold ${second}`);
    }
    return json(200, { released: core.release(name) });
  }
  if (is("POST", "reset")) {
    core.reset();
    return json(200, { reset: true });
  }
  if (is("POST", "config")) {
    try {
      core.configure(parseJson(rawBody));
    } catch (error) {
      if (error instanceof SyntaxError) return problem(400, "the body must be a JSON object of settings");
      if (isRunflowError(error)) return problem(400, error.message);
      throw error;
    }
    return json(200, publicConfig(core.config));
  }
  if (first === "requests" && second !== undefined && segments.length <= 3) {
    let requestId: string;
    try {
      requestId = decodeURIComponent(second);
    } catch {
      return problem(404, `no request ${second}`);
    }
    if (segments.length === 2 && method === "GET") return requestDetails(core, requestId);
    if (third === "expire" && method === "POST") {
      return core.expire(requestId)
        ? json(200, { request_id: requestId, expired: true })
        : problem(404, `no request ${requestId}`);
    }
  }
  return problem(404, `no control endpoint ${method} /__emulator/${path}`);
}
