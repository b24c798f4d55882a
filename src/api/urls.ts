/**
 * The API's URLs: the base URL a user may give, the paths of each call, and the one rule
 * that keeps the token home — it is sent only to the base URL's own origin.
 */
import { UsageError } from "../errors.js";
import { isLoopbackHost } from "../models/media-rules.js";

export const DEFAULT_BASE_URL = "https://model-api.runcomfy.net";

/**
 * The base URL without its trailing slash. Plain http would carry the token in clear text,
 * so it is refused unless the host is this machine (the emulator).
 */
export function checkBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`Expected the API base URL (RUNCOMFY_BASE_URL) to be a URL, got \`${text}\``, {
      hint: `leave RUNCOMFY_BASE_URL unset to use ${DEFAULT_BASE_URL}`,
    });
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw new UsageError(
      `Expected the API base URL (RUNCOMFY_BASE_URL) to be a plain origin and path, without credentials, query or fragment`,
      { hint: `e.g. ${DEFAULT_BASE_URL}` },
    );
  }
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    throw new UsageError(
      `refusing to send the API token over plain http to ${url.host}: the API base URL must be https`,
      {
        hint: "use https://…; plain http is allowed only on loopback (127.0.0.1, localhost, ::1) for the emulator",
      },
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new UsageError(
      `Expected the API base URL (RUNCOMFY_BASE_URL) to be https, got \`${url.protocol}\``,
    );
  }
  return url.href.replace(/\/+$/, "");
}

/** `minimax/Hailuo Video 01 Live` → `minimax/Hailuo%20Video%2001%20Live`: every segment encoded. */
export function encodeModelId(modelId: string): string {
  return modelId.split("/").map(encodeURIComponent).join("/");
}

export function requestUrl(
  baseUrl: string,
  requestId: string,
  action: "status" | "result" | "cancel",
): string {
  return `${baseUrl}/v1/requests/${encodeURIComponent(requestId)}/${action}`;
}

export function isSameOrigin(url: string, baseUrl: string): boolean {
  try {
    return new URL(url).origin === new URL(baseUrl).origin;
  } catch {
    return false;
  }
}

/** A URL the API returned, kept only when it points at the API itself; else ours. */
export function trustedUrl(returned: unknown, baseUrl: string, fallback: string): string {
  return typeof returned === "string" && isSameOrigin(returned, baseUrl) ? returned : fallback;
}
