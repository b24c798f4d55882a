/**
 * The emulator's HTTP server: every call goes log → latency → fault → rate limit → auth →
 * handler → answer (or a fault instead of the answer), on loopback only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { UsageError } from "../errors.js";
import { isLoopbackHost, loadModelRegistry, type ModelRegistry } from "../models/index.js";
import * as api from "./api.js";
import {
  applyConfigPatch,
  CONFIG_KEYS,
  DEFAULT_CONFIG,
  type EmulatorConfig,
  type EmulatorConfigPatch,
  type Endpoint,
} from "./config.js";
import { control } from "./control.js";
import { EmulatorCore, type EmulatorState } from "./core.js";
import {
  isFileEndpoint,
  latencyFor,
  randomServerError,
  takeScriptedFault,
  withOutput,
  type ChosenFault,
} from "./faults.js";
import { mediaFile, outputFile } from "./files.js";
import {
  BodyTooLargeError,
  dropConnection,
  readBody,
  writeEndless,
  writeReply,
  writeStalled,
} from "./http-io.js";
import { apiError, ErrorCode, withHeaders, type Reply } from "./replies.js";
import { loggableBody, redactedHeaders, type EmulatorLogEntry } from "./request-log.js";
import { API_ENDPOINTS, routeOf, type Route } from "./routes.js";
import type { SubmissionStats } from "./submissions.js";

export interface EmulatorOptions extends EmulatorConfigPatch {
  /** Default 0: any free port. */
  port?: number;
  /** Default "127.0.0.1"; only loopback hosts are accepted. */
  host?: string;
  /** When set, only `Bearer <token>` is accepted; unset, any non-empty Bearer token is. */
  token?: string;
  /**
   * Chance for durations in a range, failRate, errorRate and fault rates; default Math.random.
   * When given, request ids become a deterministic sequence too.
   */
  random?: () => number;
  /** Injected time for the request lifecycle; default Date.now. */
  clock?: { now(): number };
  /** Default: loadModelRegistry(). */
  registry?: ModelRegistry;
  /** Keep every call with its body in the log (default true); off, only the last 1000 calls, without bodies. */
  logBodies?: boolean;
}

export interface RunningEmulator {
  /** The API base URL and the file host, e.g. "http://127.0.0.1:40123". */
  url: string;
  port: number;
  close(): Promise<void>;
  /** Forgets requests, the log and counters; restores the start config. */
  reset(): void;
  /** Same as POST /__emulator/config; throws UsageError on a bad setting. */
  configure(patch: EmulatorConfigPatch): void;
  /** The live config (faults with their remaining `times`). */
  config(): EmulatorConfig;
  /** Same as GET /__emulator/requests. */
  requestLog(): EmulatorLogEntry[];
  /** Same as GET /__emulator/submissions. */
  submissions(): SubmissionStats;
  /** Same as GET /__emulator/state. */
  state(): EmulatorState;
  /** The most requests unfinished at once since the start (or reset), in total and per model. */
  peakInFlight(): { total: number; byModel: Record<string, number> };
  /**
   * Same as POST /__emulator/release[/NAME]: requests held by `[emulator:hold]` (under
   * `name` when given) end now, or at their normal end if later. Returns how many.
   */
  release(name?: string): number;
  /** Same as POST /__emulator/requests/{id}/expire; false when there is no such request. */
  expire(requestId: string): boolean;
}

const MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_HOST = "127.0.0.1";

/** Timers of slow answers, woken at close so nothing keeps the process alive. */
class Sleeper {
  private readonly pending = new Map<NodeJS.Timeout, () => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        resolve();
      }, ms);
      this.pending.set(timer, resolve);
    });
  }

  wakeAll(): void {
    for (const [timer, resolve] of this.pending) {
      clearTimeout(timer);
      resolve();
    }
    this.pending.clear();
  }
}

const GATEWAY_PAGES = {
  "502": "502 Bad Gateway",
  "503": "503 Service Temporarily Unavailable",
  "504": "504 Gateway Time-out",
} as const;

/** The answer a fault gives instead of the real one; undefined: drop the connection (or write it by hand). */
function faultReply(fault: ChosenFault, url: URL): Reply | undefined {
  switch (fault.kind) {
    case "empty-200":
      return { type: "text", status: 200, body: "", contentType: "application/json" };
    case "307":
      // A redirect to the same place: what a misconfigured proxy answers. Clients must not follow it.
      return withHeaders(
        { type: "text", status: 307, body: "", contentType: "text/plain; charset=utf-8" },
        { location: url.href },
      );
    case "500":
      return apiError(500, ErrorCode.internal, "internal server error (emulated)");
    case "502":
    case "503":
    case "504": {
      // Gateways answer HTML, not the API's JSON: clients must not depend on a JSON body.
      const title = GATEWAY_PAGES[fault.kind];
      const body = `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`;
      return { type: "text", status: Number(fault.kind), body, contentType: "text/html" };
    }
    case "429": {
      const reply = apiError(429, ErrorCode.rateLimited, "too many requests (emulated)");
      return fault.retryAfter === undefined
        ? reply
        : withHeaders(reply, { "retry-after": String(fault.retryAfter) });
    }
    case "html-page":
      // A file host's error or login page, answered 200 as if it were the file.
      return {
        type: "text",
        status: 200,
        body: "<!doctype html>\n<html><head><title>Access denied</title></head><body><h1>Access denied</h1></body></html>\n",
        contentType: "text/html; charset=utf-8",
      };
    case "404":
      // A file that is gone: what a media host answers once a picture is deleted.
      return { type: "text", status: 404, body: "Not Found\n", contentType: "text/plain; charset=utf-8" };
    default:
      return undefined;
  }
}

/**
 * Whether a fault replaces the answer. `slow` only delays it; `truncate` and
 * `truncated-json` cut its body; `output` rewrites a result; on the file host `stall` and
 * `endless` change how the file's body is sent (on the API they replace the JSON answer).
 */
function replacesAnswer(fault: ChosenFault, endpoint: Endpoint): boolean {
  if (fault.kind === "stall" || fault.kind === "endless") return !isFileEndpoint(endpoint);
  return !ALTERS_ANSWER.has(fault.kind);
}

/** Faults that change the real answer instead of replacing it. */
const ALTERS_ANSWER = new Set<ChosenFault["kind"]>(["slow", "hold", "truncate", "truncated-json", "output"]);

/** The answer as the fault alters it: an `output` fault rewrites a succeeded result's `output`. */
function altered(reply: Reply, fault: ChosenFault | undefined, baseUrl: string): Reply {
  if (fault?.kind !== "output" || fault.output === undefined || reply.type !== "json") return reply;
  return { ...reply, body: withOutput(reply.body, fault.output, baseUrl) };
}

interface Handled {
  reply: Reply;
  loseAnswer?: boolean;
}

async function dispatch(
  core: EmulatorCore,
  request: IncomingMessage,
  route: Route,
  url: URL,
  rawBody: string,
): Promise<Handled> {
  switch (route.endpoint) {
    case "files":
      return { reply: await outputFile(core, route.requestId, route.fileName) };
    case "media":
      return { reply: await mediaFile(route.fileName, url.searchParams) };
    case "control":
    case "unknown":
      throw new Error(`dispatch: ${route.endpoint} routes are answered before dispatch`);
    default:
  }
  const rateLimit = core.config.rateLimit;
  if (rateLimit !== null) {
    const waitSeconds = core.limiter.take(core.now(), rateLimit);
    if (waitSeconds !== undefined) {
      const reply = apiError(
        429,
        ErrorCode.rateLimited,
        `rate limit of ${rateLimit} requests per second exceeded`,
      );
      return { reply: withHeaders(reply, { "retry-after": String(waitSeconds) }) };
    }
  }
  const owner = api.authenticate(core, request.headers.authorization);
  if (typeof owner !== "number") return { reply: owner };
  switch (route.endpoint) {
    case "submit":
      return api.submit(core, route.modelId, owner, rawBody);
    case "models":
      return {
        reply:
          route.modelId === undefined
            ? api.listModels(core, url.searchParams)
            : api.getModel(core, route.modelId),
      };
    case "status":
    case "result":
    case "cancel": {
      const found = api.lookUp(core, route.requestId, owner);
      if (api.isReply(found)) return { reply: found };
      if (route.endpoint === "status") return { reply: api.status(core, found) };
      if (route.endpoint === "result") {
        const includeCost = ["true", "1"].includes(url.searchParams.get("include_cost") ?? "");
        return { reply: api.result(core, found, includeCost) };
      }
      return { reply: api.cancel(core, found.request) };
    }
  }
}

async function handle(
  core: EmulatorCore,
  sleeper: Sleeper,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const method = request.method ?? "GET";
  const url = new URL(request.url ?? "/", core.baseUrl);
  const route = routeOf(method, url.pathname);

  let rawBody = "";
  let tooLarge = false;
  try {
    if (method === "POST") rawBody = await readBody(request, MAX_BODY_BYTES);
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) throw error;
    tooLarge = true;
  }

  if (route.endpoint === "control") {
    const reply = tooLarge
      ? apiError(413, ErrorCode.tooLarge, "body too large")
      : control(core, method, route.segments, rawBody);
    await writeReply(request, response, reply);
    return;
  }

  const entry = core.log.open({
    at: new Date(core.now()).toISOString(),
    method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: redactedHeaders(request.headers),
    ...(core.log.keepBodies && rawBody !== "" ? { body: loggableBody(rawBody) } : {}),
    endpoint: route.endpoint,
  });
  const answer = (reply: Reply, fault?: ChosenFault) =>
    writeReply(request, response, reply, {
      truncateJson: fault?.kind === "truncated-json",
      body:
        fault?.kind === "truncate" || fault?.kind === "stall" || fault?.kind === "endless"
          ? fault.kind
          : "whole",
      onStatus: (status) => core.log.answered(entry, status, fault?.label),
    });
  const drop = (label: string) => {
    core.log.answered(entry, null, label);
    dropConnection(request);
  };
  const answerWithFault = async (fault: ChosenFault) => {
    if (fault.kind === "endless" || fault.kind === "stall") {
      core.log.answered(entry, 200, fault.label);
      if (fault.kind === "endless") await writeEndless(response);
      else writeStalled(response);
      return;
    }
    const reply = faultReply(fault, url);
    if (reply) await answer(reply, fault);
    else drop(fault.label);
  };

  if (route.endpoint === "unknown") {
    const reply =
      route.allow === undefined
        ? apiError(404, ErrorCode.noSuchEndpoint, `no endpoint ${method} ${url.pathname}`)
        : withHeaders(
            apiError(405, ErrorCode.noSuchEndpoint, `${method} is not allowed here; use ${route.allow}`),
            { allow: route.allow },
          );
    await answer(reply);
    return;
  }
  if (tooLarge) {
    await answer(
      apiError(413, ErrorCode.tooLarge, `the request body is larger than ${MAX_BODY_BYTES} bytes`),
    );
    return;
  }

  const endpoint: Endpoint = route.endpoint;
  const latency = latencyFor(core.config.latency, endpoint, core.random);
  if (latency > 0) await sleeper.sleep(latency);
  const fault =
    takeScriptedFault(core.config.faults, endpoint, core.random, request.headers.range !== undefined) ??
    (API_ENDPOINTS.has(endpoint) ? randomServerError(core.config.errorRate, core.random) : undefined);
  if (fault?.kind === "slow") await sleeper.sleep(fault.delayMs ?? 0);
  if (fault?.kind === "hold") await core.holdCall();
  if (response.destroyed) return;

  if (fault && replacesAnswer(fault, endpoint) && !fault.afterCreate) {
    await answerWithFault(fault);
    return;
  }

  const handled = await dispatch(core, request, route, url, rawBody);
  if (response.destroyed) return;
  if (fault && replacesAnswer(fault, endpoint)) await answerWithFault(fault);
  else if (handled.loseAnswer) drop("lost-answer");
  else await answer(altered(handled.reply, fault, core.baseUrl), fault);
}

function internalError(response: ServerResponse, error: unknown): void {
  if (response.headersSent || response.destroyed) {
    response.destroy();
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  const body = JSON.stringify({ error_code: ErrorCode.internal, error_message: `emulator bug: ${message}` });
  response.writeHead(500, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
  });
  response.end(body);
}

function startConfigOf(options: EmulatorOptions): EmulatorConfig {
  const patch: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    if (options[key] !== undefined) patch[key] = options[key];
  }
  return applyConfigPatch(DEFAULT_CONFIG, patch);
}

/** The port asked for is taken: `runflow emulator` says to pick another; `apply --emulator` takes a free one. */
export class PortInUseError extends UsageError {
  constructor(
    readonly port: number,
    host: string,
    cause: Error,
  ) {
    super(`port ${port} on ${host} is already in use`, {
      hint: "pick another with --port, or --port 0 for any free port",
      cause,
    });
  }
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") {
        reject(new PortInUseError(port, host, error));
      } else {
        reject(error);
      }
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Starts a RunComfy-compatible API on loopback (API.md, "The emulator"). */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const host = (options.host ?? DEFAULT_HOST).replace(/^\[(.*)\]$/, "$1");
  if (!isLoopbackHost(host)) {
    throw new UsageError(
      `Expected \`host\` to be a loopback address (127.0.0.1, ::1 or localhost), got \`${host}\``,
      {
        hint: "the emulator accepts any token and serves files without auth, so it never listens beyond this machine",
      },
    );
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`Expected \`port\` to be an integer from 0 to 65535, got \`${String(port)}\``);
  }
  const clock = options.clock ?? { now: () => Date.now() };
  const core = new EmulatorCore({
    registry: options.registry ?? loadModelRegistry(),
    random: options.random ?? Math.random,
    now: () => clock.now(),
    deterministicIds: options.random !== undefined,
    logBodies: options.logBodies ?? true,
    startConfig: startConfigOf(options),
  });
  const sleeper = new Sleeper();
  const server = createServer({ keepAlive: true, noDelay: true }, (request, response) => {
    handle(core, sleeper, request, response).catch((error: unknown) => internalError(response, error));
  });
  const address = await listen(server, port, host);
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  core.baseUrl = `http://${urlHost}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url: core.baseUrl,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets and slow answers would otherwise hold close() open.
        server.closeAllConnections();
        sleeper.wakeAll();
        core.releaseCalls();
      });
      return closing;
    },
    reset: () => core.reset(),
    configure: (patch) => core.configure(patch),
    config: () => structuredClone(core.config),
    requestLog: () => core.log.list(),
    submissions: () => core.submissions.stats(),
    state: () => core.state(),
    peakInFlight: () => core.book.peakInFlight(core.now()),
    expire: (requestId) => core.expire(requestId),
    release: (name) => core.release(name),
  };
}
