/** Which fault, if any, a call meets: scripted faults first, then the random error rate. */
import { sampleDuration, type EmulatorConfig, type Endpoint, type Fault, type FaultKind } from "./config.js";

export interface ChosenFault {
  kind: Exclude<FaultKind, "drop-after-create">;
  /** Do the call's work before answering with the fault. */
  afterCreate: boolean;
  retryAfter?: number;
  delayMs?: number;
  /** `output`: the result's `output` to give instead of the real one. */
  output?: Record<string, unknown>;
  /** How the request log names it. */
  label: string;
}

export const DEFAULT_SLOW_MS = 2_000;
/** Faults that break an API answer's JSON (hostile gateways and proxies). */
const BROKEN_JSON_KINDS: ReadonlySet<FaultKind> = new Set(["empty-200", "truncated-json"]);
const RANDOM_ERRORS = ["500", "502", "503", "504"] as const;

/** Faults of a file's body: they exist only where bodies are files. */
const FILE_BODY_FAULTS: ReadonlySet<FaultKind> = new Set(["truncate", "html-page", "404"]);

/** The file host's endpoints, as opposed to the API's JSON ones. */
export function isFileEndpoint(endpoint: Endpoint): boolean {
  return endpoint === "files" || endpoint === "media";
}

function applies(fault: Fault, endpoint: Endpoint, ranged: boolean): boolean {
  if (fault.endpoint !== "*" && fault.endpoint !== endpoint) return false;
  if (fault.ranged !== undefined && (!isFileEndpoint(endpoint) || fault.ranged !== ranged)) return false;
  // File faults exist only where bodies are files; broken JSON only where answers are JSON;
  // `stall` and `endless` break either, each in its own way.
  if (FILE_BODY_FAULTS.has(fault.kind)) return isFileEndpoint(endpoint);
  if (BROKEN_JSON_KINDS.has(fault.kind)) return !isFileEndpoint(endpoint);
  if (fault.kind === "output") return endpoint === "result";
  return true;
}

/**
 * The first scripted fault that fires for this call. A fault with `times` counts down and
 * leaves `faults` (mutated in place) when spent.
 */
export function takeScriptedFault(
  faults: Fault[],
  endpoint: Endpoint,
  random: () => number,
  /** The call asks for a range of the file (a `Range` header). */
  ranged = false,
): ChosenFault | undefined {
  for (let index = 0; index < faults.length; index++) {
    const fault = faults[index] as Fault;
    if (!applies(fault, endpoint, ranged)) continue;
    if (fault.rate !== undefined && random() >= fault.rate) continue;
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) faults.splice(index, 1);
    }
    const kind = fault.kind === "drop-after-create" ? "drop" : fault.kind;
    const chosen: ChosenFault = {
      kind,
      afterCreate: fault.kind === "drop-after-create" || fault.afterCreate === true,
      label: fault.kind,
    };
    if (fault.retryAfter !== undefined) chosen.retryAfter = fault.retryAfter;
    if (fault.kind === "slow") chosen.delayMs = fault.delayMs ?? DEFAULT_SLOW_MS;
    if (fault.output !== undefined) chosen.output = fault.output;
    return chosen;
  }
  return undefined;
}

/** A 5xx drawn by `errorRate` (which never creates anything), or undefined. */
export function randomServerError(errorRate: number, random: () => number): ChosenFault | undefined {
  if (errorRate <= 0 || random() >= errorRate) return undefined;
  const kind = RANDOM_ERRORS[Math.min(Math.floor(random() * RANDOM_ERRORS.length), RANDOM_ERRORS.length - 1)];
  return { kind: kind ?? "500", afterCreate: false, label: `error-rate:${kind ?? "500"}` };
}

/** The extra latency for one call to `endpoint`. */
export function latencyFor(
  latency: EmulatorConfig["latency"],
  endpoint: Endpoint,
  random: () => number,
): number {
  const setting = latency[endpoint] ?? latency["*"];
  return setting === undefined ? 0 : sampleDuration(setting, random);
}

/**
 * A succeeded result's body with `output` replaced by `template`, whose strings may say
 * `{url}` (the request's real output URL) and `{base}` (the emulator's URL). Other bodies
 * (not yet succeeded, failed) are returned as they are.
 */
export function withOutput(body: unknown, template: Record<string, unknown>, baseUrl: string): unknown {
  if (typeof body !== "object" || body === null) return body;
  const record = body as Record<string, unknown>;
  if (record.status !== "succeeded" || typeof record.output !== "object" || record.output === null)
    return body;
  const realUrl = Object.values(record.output).find((value) => typeof value === "string") ?? "";
  const fill = (value: unknown): unknown => {
    if (typeof value === "string")
      return value.replaceAll("{url}", String(realUrl)).replaceAll("{base}", baseUrl);
    if (Array.isArray(value)) return value.map(fill);
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([key, element]) => [key, fill(element)]));
    }
    return value;
  };
  return { ...record, output: fill(template) };
}
