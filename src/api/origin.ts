/**
 * Which API a run talks to: its origin. Results, re-attachment and learned durations belong
 * to the origin that produced them — the emulator's test video is never taken over by a run
 * against RunComfy, and a request id the emulator handed out is never polled at RunComfy.
 *
 * An origin is `scheme://host[:port]` of the base URL (the WHATWG origin: lower-case host,
 * default port left out), never the token nor the path. The in-process emulator of
 * `apply --emulator` takes whatever port is free, so its origin is a name instead: every
 * `apply --emulator` is the same API, and reuses what the last one did.
 */
import { isLoopbackHost } from "../models/media-rules.js";
import { checkBaseUrl, DEFAULT_BASE_URL } from "./urls.js";

/** The origin of the in-process emulator (`apply --emulator`), whatever its port. */
export const EMBEDDED_EMULATOR_ORIGIN = "emulator";

/** The origin of a base URL (default RunComfy's); a usage error for a base URL runflow refuses. */
export function apiOriginOf(baseUrl: string | undefined): string {
  return new URL(checkBaseUrl(baseUrl ?? DEFAULT_BASE_URL)).origin;
}

/**
 * Whether an origin is an emulator: the embedded one, or anything on loopback (a standalone
 * `runflow emulator`). Nothing made there is billed. An unrecorded origin (`undefined`) is
 * not known to be one.
 */
export function isEmulatorOrigin(origin: string | undefined): boolean {
  if (origin === undefined) return false;
  if (origin === EMBEDDED_EMULATOR_ORIGIN) return true;
  try {
    return isLoopbackHost(new URL(origin).hostname);
  } catch {
    return false;
  }
}

/** An origin as a sentence names it: `the embedded emulator`, `the emulator at http://127.0.0.1:8787`, `https://…`. */
export function describeOrigin(origin: string | undefined): string {
  if (origin === undefined)
    return "an API runflow did not record (a run from before runflow recorded API origins)";
  if (origin === EMBEDDED_EMULATOR_ORIGIN) return "the embedded emulator (apply --emulator)";
  if (isEmulatorOrigin(origin)) return `the emulator at ${origin}`;
  return origin;
}

/** An origin in a table cell: `emulator`, `emulator 127.0.0.1:8787`, `model-api.runcomfy.net`, `unknown`. */
export function shortOrigin(origin: string | undefined): string {
  if (origin === undefined) return "unknown";
  if (origin === EMBEDDED_EMULATOR_ORIGIN) return "emulator";
  let host = origin;
  try {
    host = new URL(origin).host;
  } catch {
    // Shown as recorded.
  }
  return isEmulatorOrigin(origin) ? `emulator ${host}` : host;
}
