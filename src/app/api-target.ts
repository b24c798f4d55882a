/**
 * Which API a command talks to, read at the edge: the target it was given (the emulator), or
 * the environment's RUNCOMFY_BASE_URL. A module of its own so that `plan` and `models`, which
 * only need the origin, load no HTTP client.
 */
import { apiOriginOf } from "../api/origin.js";
import type { ApiTarget } from "../engine/use-case-ports.js";

/** The API origin a run at this target records, and reuses and re-attaches from (a usage error for a bad base URL). */
export function apiOriginFor(request: {
  api?: ApiTarget | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}): string {
  if (request.api) return request.api.origin ?? apiOriginOf(request.api.baseUrl);
  const env = request.env ?? process.env;
  return apiOriginOf(env.RUNCOMFY_BASE_URL?.trim() || undefined);
}
