/**
 * The emulator's runtime-changeable settings: their shape, defaults, and the one validator
 * every way of changing them goes through (start options, `configure()`, `POST
 * /__emulator/config`, the CLI's flags), so a bad value is refused with the same message
 * wherever it comes from.
 */
import { UsageError } from "../errors.js";

/** The emulator's endpoints as faults and latency address them. */
export const ENDPOINTS = ["submit", "status", "result", "cancel", "models", "files", "media"] as const;
export type Endpoint = (typeof ENDPOINTS)[number];
export type EndpointSelector = Endpoint | "*";

export const FAULT_KINDS = [
  "500",
  "502",
  "503",
  "504",
  "429",
  "drop",
  "drop-after-create",
  "slow",
  "hold",
  "truncate",
  "empty-200",
  "truncated-json",
  "307",
  "endless",
  "stall",
  "html-page",
  "404",
  "output",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Milliseconds, fixed or drawn uniformly from a range for each use. */
export type DurationSetting = number | { min: number; max: number };

/**
 * One scripted fault. It fires on calls to `endpoint` (`*`: every API, file and media
 * endpoint; never the control endpoints), on every matching call unless `times` or `rate`
 * narrows it. The first matching fault in the list wins.
 */
export interface Fault {
  endpoint: EndpointSelector;
  kind: FaultKind;
  /** Fire on the next N matching calls, then retire (the fault leaves the list). */
  times?: number;
  /** Fire on each matching call with this probability (0 < rate ≤ 1). */
  rate?: number;
  /** `429` only: the `Retry-After` header in seconds; omitted, the 429 carries no header. */
  retryAfter?: number;
  /** `slow` only: how long before the answer (default 2000 ms). */
  delayMs?: number;
  /**
   * Do the call's work first, then answer with the fault: a submit creates its request, a
   * cancel cancels. `drop-after-create` is `drop` with this set.
   */
  afterCreate?: boolean;
  /**
   * `output` only: what a succeeded /result says as its `output` instead of the real one. In
   * its strings `{url}` stands for the request's real output URL and `{base}` for the
   * emulator's URL, so hostile keys can still point at real files.
   */
  output?: Record<string, unknown>;
  /**
   * Files and media only: fire only on calls with (true) or without (false) a `Range`
   * header — a host that breaks whole-file downloads but answers a ranged probe, or the
   * reverse.
   */
  ranged?: boolean;
}

export type ErrorShape = "object" | "string";

export interface EmulatorConfig {
  /** Time a request spends in_progress. */
  duration: DurationSetting;
  /** Time a request spends in_queue before it may start. */
  queueDelay: DurationSetting;
  /** Requests in progress at once; the rest wait in_queue. null: unlimited. */
  capacity: number | null;
  /** Probability that a request ends `failed`. */
  failRate: number;
  /** Probability that an API call answers 5xx (500 JSON, or 502/503/504 with an HTML body). */
  errorRate: number;
  /** API calls per second before 429 with Retry-After. null: unlimited. */
  rateLimit: number | null;
  /** Added before answering, per endpoint; `*` for the rest. */
  latency: Partial<Record<EndpointSelector, DurationSetting>>;
  faults: Fault[];
  /** What /status says about a failed request: `completed` (clients must ask /result) or `failed`. */
  statusFailedAs: "completed" | "failed";
  /** How /result carries a failure: `{error: {message}}` or `{error: "message"}`. */
  resultErrorAs: ErrorShape;
  /** Every submit answers 402 (no balance). */
  noBalance: boolean;
  /** Milliseconds a finished request stays retrievable before 404001. null: forever. */
  retention: number | null;
  /** The most models one page of `GET /v1/models` holds. */
  modelsPageSize: number;
  /** The only accepted API token; null accepts any non-empty Bearer token. */
  token: string | null;
  /**
   * Prices by model id, served by `GET /v1/models/{id}` and charged on `/result?include_cost=true`
   * (prices.ts). A model not listed gets the default price of its kind when `defaultPrices`
   * is on; `null` gives it no price at all (its price call answers 404).
   */
  prices: Record<string, ModelPrice | null>;
  /** Models without an entry in `prices` are priced by kind (video per second, image per output). */
  defaultPrices: boolean;
  /** Seconds of output a per-second model's request is billed for, unless its price says otherwise. */
  outputSeconds: number;
  /** What a request is charged, as a multiple of what its price says (2: charge double). */
  costFactor: number;
  /** Whether `/result?include_cost=true` carries `cost`; off, the API reports no cost. */
  reportCost: boolean;
}

/** One model's price: `usd` per `unit`; `seconds` overrides `outputSeconds` for this model. */
export interface ModelPrice {
  usd: number;
  unit: "second" | "output";
  seconds?: number;
}

/**
 * A change to the config. Unlike the config itself it may give `latency` as one setting
 * for every endpoint, and `Infinity` for "no limit".
 */
export type EmulatorConfigPatch = Partial<Omit<EmulatorConfig, "latency">> & {
  latency?: DurationSetting | EmulatorConfig["latency"];
};

export const DEFAULT_CONFIG: Readonly<EmulatorConfig> = Object.freeze({
  duration: 0,
  queueDelay: 0,
  capacity: null,
  failRate: 0,
  errorRate: 0,
  rateLimit: null,
  latency: {},
  faults: [],
  statusFailedAs: "completed",
  resultErrorAs: "object",
  noBalance: false,
  retention: null,
  modelsPageSize: 1,
  token: null,
  prices: {},
  defaultPrices: true,
  outputSeconds: 5,
  costFactor: 1,
  reportCost: true,
});

type Check<T> = (value: unknown, name: string) => T;

function shown(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "nothing";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? typeof value;
}

function expected(name: string, what: string, value: unknown): UsageError {
  return new UsageError(`Expected \`${name}\` to be ${what}, got \`${shown(value)}\``);
}

const probability: Check<number> = (value, name) => {
  if (typeof value === "number" && value >= 0 && value <= 1) return value;
  throw expected(name, "a number between 0 and 1", value);
};

const milliseconds: Check<number> = (value, name) => {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  throw expected(name, "a number of milliseconds ≥ 0", value);
};

const durationSetting: Check<DurationSetting> = (value, name) => {
  if (typeof value === "number") return milliseconds(value, name);
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const { min, max, ...rest } = value as Record<string, unknown>;
    if (
      Object.keys(rest).length === 0 &&
      typeof min === "number" &&
      typeof max === "number" &&
      Number.isFinite(max) &&
      min >= 0 &&
      min <= max
    ) {
      return { min, max };
    }
  }
  throw expected(name, "milliseconds (a number ≥ 0) or a range { min, max } with 0 ≤ min ≤ max", value);
};

/** null, undefined and Infinity all mean "no limit"; JSON cannot carry Infinity. */
function unlimitedOr<T>(check: Check<T>): Check<T | null> {
  return (value, name) =>
    value === null || value === undefined || value === Number.POSITIVE_INFINITY ? null : check(value, name);
}

const positiveInteger: Check<number> = (value, name) => {
  if (typeof value === "number" && Number.isInteger(value) && value >= 1) return value;
  throw expected(name, "an integer ≥ 1", value);
};

const positiveNumber: Check<number> = (value, name) => {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  throw expected(name, "a number > 0", value);
};

const boolean: Check<boolean> = (value, name) => {
  if (typeof value === "boolean") return value;
  throw expected(name, "true or false", value);
};

function oneOf<const T extends string>(options: readonly T[]): Check<T> {
  return (value, name) => {
    if (typeof value === "string" && (options as readonly string[]).includes(value)) return value as T;
    throw expected(name, `one of ${options.map((option) => `"${option}"`).join(", ")}`, value);
  };
}

const endpointSelector = oneOf<EndpointSelector>([...ENDPOINTS, "*"]);

const latency: Check<EmulatorConfig["latency"]> = (value, name) => {
  if (typeof value === "number" || (typeof value === "object" && value !== null && "min" in value)) {
    return { "*": durationSetting(value, name) };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw expected(name, "a duration, a range { min, max }, or a map from endpoint to either", value);
  }
  const result: EmulatorConfig["latency"] = {};
  for (const [endpoint, setting] of Object.entries(value)) {
    const key = endpointSelector(endpoint, `${name} key`);
    result[key] = durationSetting(setting, `${name}.${endpoint}`);
  }
  return result;
};

const FAULT_FIELDS = [
  "endpoint",
  "kind",
  "times",
  "rate",
  "retryAfter",
  "delayMs",
  "afterCreate",
  "output",
  "ranged",
];

function fault(value: unknown, name: string): Fault {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw expected(
      name,
      "a fault { endpoint, kind, times?, rate?, retryAfter?, delayMs?, afterCreate?, output?, ranged? }",
      value,
    );
  }
  const raw = value as Record<string, unknown>;
  const unknownField = Object.keys(raw).find((key) => !FAULT_FIELDS.includes(key));
  if (unknownField !== undefined) {
    throw new UsageError(
      `Unknown field \`${name}.${unknownField}\`; a fault has ${FAULT_FIELDS.map((f) => `\`${f}\``).join(", ")}`,
    );
  }
  const result: Fault = {
    endpoint: endpointSelector(raw.endpoint ?? "*", `${name}.endpoint`),
    kind: oneOf(FAULT_KINDS)(raw.kind, `${name}.kind`),
  };
  if (raw.times !== undefined) result.times = positiveInteger(raw.times, `${name}.times`);
  if (raw.rate !== undefined) {
    const rate = probability(raw.rate, `${name}.rate`);
    if (rate === 0) throw expected(`${name}.rate`, "a number above 0 and at most 1", raw.rate);
    result.rate = rate;
  }
  if (raw.retryAfter !== undefined) {
    if (result.kind !== "429") throw new UsageError(`\`${name}.retryAfter\` applies only to a "429" fault`);
    const seconds = raw.retryAfter;
    if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 0) {
      throw expected(`${name}.retryAfter`, "a whole number of seconds ≥ 0", seconds);
    }
    result.retryAfter = seconds;
  }
  if (raw.delayMs !== undefined) result.delayMs = milliseconds(raw.delayMs, `${name}.delayMs`);
  if (raw.afterCreate !== undefined) result.afterCreate = boolean(raw.afterCreate, `${name}.afterCreate`);
  if (raw.ranged !== undefined) result.ranged = boolean(raw.ranged, `${name}.ranged`);
  if (result.kind === "output") {
    const output = raw.output;
    if (typeof output !== "object" || output === null || Array.isArray(output)) {
      throw expected(`${name}.output`, "the `output` object a succeeded /result gives instead", output);
    }
    result.output = structuredClone(output as Record<string, unknown>);
  } else if (raw.output !== undefined) {
    throw new UsageError(`\`${name}.output\` applies only to an "output" fault`);
  }
  return result;
}

const faults: Check<Fault[]> = (value, name) => {
  if (!Array.isArray(value)) throw expected(name, "a list of faults", value);
  return value.map((item, index) => fault(item, `${name}[${index}]`));
};

const token: Check<string | null> = (value, name) => {
  if (value === null || value === undefined) return null;
  if (typeof value === "string" && value.trim() !== "" && !/\s/.test(value)) return value;
  throw new UsageError(`Expected \`${name}\` to be a non-empty token without spaces`);
};

const nonNegativeNumber: Check<number> = (value, name) => {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  throw expected(name, "a number ≥ 0", value);
};

function modelPrice(value: unknown, name: string): ModelPrice | null {
  if (value === null) return null;
  const raw =
    typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  const unknownField = raw && Object.keys(raw).find((key) => !["usd", "unit", "seconds"].includes(key));
  if (!raw || unknownField !== undefined) {
    throw expected(name, 'a price { usd, unit: "second" | "output", seconds? } or null', value);
  }
  const price: ModelPrice = {
    usd: nonNegativeNumber(raw.usd, `${name}.usd`),
    unit: oneOf(["second", "output"] as const)(raw.unit, `${name}.unit`),
  };
  if (raw.seconds !== undefined) price.seconds = nonNegativeNumber(raw.seconds, `${name}.seconds`);
  return price;
}

const prices: Check<Record<string, ModelPrice | null>> = (value, name) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw expected(name, "a map from model id to a price or null", value);
  }
  return Object.fromEntries(
    Object.entries(value).map(([model, price]) => [model, modelPrice(price, `${name}.${model}`)]),
  );
};

const CHECKS: { [K in keyof EmulatorConfig]: Check<EmulatorConfig[K]> } = {
  duration: durationSetting,
  queueDelay: durationSetting,
  capacity: unlimitedOr(positiveInteger),
  failRate: probability,
  errorRate: probability,
  rateLimit: unlimitedOr(positiveNumber),
  latency,
  faults,
  statusFailedAs: oneOf(["completed", "failed"]),
  resultErrorAs: oneOf(["object", "string"]),
  noBalance: boolean,
  retention: unlimitedOr(milliseconds),
  modelsPageSize: positiveInteger,
  token,
  prices,
  defaultPrices: boolean,
  outputSeconds: nonNegativeNumber,
  costFactor: nonNegativeNumber,
  reportCost: boolean,
};

export const CONFIG_KEYS = Object.keys(CHECKS) as (keyof EmulatorConfig)[];

function isConfigKey(key: string): key is keyof EmulatorConfig {
  return Object.hasOwn(CHECKS, key);
}

/**
 * `base` with `patch` applied, every value checked. Keys set to `undefined` are ignored;
 * lists and maps (`faults`, `latency`) are replaced, not merged, except `prices`, merged
 * model by model (a model set to `null` has no price). Throws UsageError naming
 * the first bad setting.
 */
export function applyConfigPatch(base: Readonly<EmulatorConfig>, patch: unknown): EmulatorConfig {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
    throw expected("config", "an object of settings", patch);
  }
  const next: EmulatorConfig = {
    ...base,
    latency: { ...base.latency },
    faults: [...base.faults],
    prices: { ...base.prices },
  };
  for (const [key, value] of Object.entries(patch)) {
    if (!isConfigKey(key)) {
      throw new UsageError(
        `Unknown emulator setting \`${key}\`; the settings are ${CONFIG_KEYS.map((k) => `\`${k}\``).join(", ")}`,
      );
    }
    if (value === undefined) continue;
    if (key === "prices") next.prices = { ...next.prices, ...prices(value, key) };
    else setChecked(next, key, value);
  }
  return next;
}

function setChecked<K extends keyof EmulatorConfig>(config: EmulatorConfig, key: K, value: unknown): void {
  config[key] = CHECKS[key](value, key);
}

/** The config as the control endpoint shows it: the token is never echoed. */
export function publicConfig(config: Readonly<EmulatorConfig>): Record<string, unknown> {
  return { ...config, token: config.token === null ? null : "[redacted]" };
}

/** One draw from a duration setting, in whole milliseconds. */
export function sampleDuration(setting: DurationSetting, random: () => number): number {
  if (typeof setting === "number") return Math.round(setting);
  return Math.round(setting.min + random() * (setting.max - setting.min));
}
