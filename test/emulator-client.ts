/**
 * A plain-fetch client for the emulator tests: what an outside caller of the API would do,
 * written from API.md, with nothing imported from the emulator's internals.
 */
export const ALEPH = "runwayml/runway-aleph/video-to-video";
export const HAILUO = "minimax/Hailuo Video 01 Live";
export const TOKEN = "test-token-123";

/** Every segment percent-encoded, as API.md says clients must. */
export function modelPath(modelId: string): string {
  return modelId.split("/").map(encodeURIComponent).join("/");
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: Record<string, unknown> & { [key: string]: unknown };
}

export interface CallOptions {
  /** null: send no Authorization header. */
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export async function call(
  base: string,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<CallResult> {
  const token = options.token === undefined ? TOKEN : options.token;
  const headers: Record<string, string> = { ...options.headers };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  }
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  let json: CallResult["json"];
  try {
    json = JSON.parse(text) as CallResult["json"];
  } catch {
    json = undefined as unknown as CallResult["json"];
  }
  return { status: response.status, headers: response.headers, text, json };
}

export function alephInput(base: string, prompt = "a cat walking"): Record<string, unknown> {
  return { prompt, video_url: `${base}/media/video.mp4`, ratio: "1280:720" };
}

export function hailuoInput(base: string, prompt = "a dog running"): Record<string, unknown> {
  return { prompt, image_url: `${base}/media/image.png?w=640&h=480` };
}

export async function submit(
  base: string,
  body: Record<string, unknown>,
  modelId = ALEPH,
  token?: string | null,
) {
  return call(base, "POST", `/v1/models/${modelPath(modelId)}`, { body, token });
}

/** Submits and returns the request id, failing loudly when the submission was refused. */
export async function submitOk(
  base: string,
  body: Record<string, unknown>,
  modelId = ALEPH,
  token?: string | null,
): Promise<string> {
  const answer = await submit(base, body, modelId, token);
  if (answer.status !== 200) throw new Error(`submit answered ${answer.status}: ${answer.text}`);
  return answer.json.request_id as string;
}

export async function statusOf(base: string, requestId: string, token?: string | null) {
  return call(base, "GET", `/v1/requests/${requestId}/status`, { token });
}

export async function resultOf(base: string, requestId: string, token?: string | null) {
  return call(base, "GET", `/v1/requests/${requestId}/result`, { token });
}

export async function cancel(base: string, requestId: string, token?: string | null) {
  return call(base, "POST", `/v1/requests/${requestId}/cancel`, { token });
}

/** A clock the test moves by hand: lifecycle tests never wait for real time. */
export function manualClock(start = Date.parse("2025-01-01T00:00:00.000Z")) {
  let current = start;
  return {
    now: () => current,
    advance(ms: number) {
      current += ms;
    },
  };
}
