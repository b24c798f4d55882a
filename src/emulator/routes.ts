/** Which endpoint a method and path address. Pure: no state, no I/O. */
import type { Endpoint } from "./config.js";

export type Route =
  | { endpoint: "submit"; modelId: string }
  | { endpoint: "models"; modelId?: string }
  | { endpoint: "status" | "result" | "cancel"; requestId: string }
  | { endpoint: "files"; requestId: string; fileName: string }
  | { endpoint: "media"; fileName: string }
  | { endpoint: "control"; segments: string[] }
  | { endpoint: "unknown"; allow?: string };

/** Endpoints that speak the API: Bearer auth, rate limit and the random error rate apply. */
export const API_ENDPOINTS: ReadonlySet<Endpoint> = new Set([
  "submit",
  "models",
  "status",
  "result",
  "cancel",
]);

function decodeSegments(segments: readonly string[]): string | undefined {
  try {
    return segments.map((segment) => decodeURIComponent(segment)).join("/");
  } catch {
    return undefined;
  }
}

function withMethod(route: Route, method: string, allowed: readonly string[]): Route {
  return allowed.includes(method) ? route : { endpoint: "unknown", allow: allowed.join(", ") };
}

export function routeOf(method: string, pathname: string): Route {
  const segments = pathname.split("/").slice(1);
  const [root, ...rest] = segments;
  if (root === "__emulator") return { endpoint: "control", segments: rest };
  if (root === "v1" && rest[0] === "models") {
    const idSegments = rest.slice(1);
    if (idSegments.length === 0) return withMethod({ endpoint: "models" }, method, ["GET"]);
    // Every segment arrives percent-encoded (`minimax/Hailuo%20Video%2001%20Live`).
    const modelId = decodeSegments(idSegments) ?? idSegments.join("/");
    if (method === "GET") return { endpoint: "models", modelId };
    return withMethod({ endpoint: "submit", modelId }, method, ["POST"]);
  }
  if (root === "v1" && rest[0] === "requests" && rest.length === 3) {
    const requestId = decodeSegments([rest[1] as string]) ?? "";
    const action = rest[2];
    if (action === "status" || action === "result") {
      return withMethod({ endpoint: action, requestId }, method, ["GET"]);
    }
    if (action === "cancel") return withMethod({ endpoint: "cancel", requestId }, method, ["POST"]);
  }
  if (root === "files" && rest.length === 2) {
    const route: Route = { endpoint: "files", requestId: rest[0] as string, fileName: rest[1] as string };
    return withMethod(route, method, ["GET", "HEAD"]);
  }
  if (root === "media" && rest.length === 1) {
    return withMethod({ endpoint: "media", fileName: rest[0] as string }, method, ["GET", "HEAD"]);
  }
  return { endpoint: "unknown" };
}
