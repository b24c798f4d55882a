/**
 * The parts of undici runflow uses, each from its own file. undici's `index.js` loads all of
 * its 112 files (mocks, caches, fetch, websockets) — 70–120 ms of apply's start — where
 * these parts need 27 (≈ 25 ms). The paths are undici's own, not its public API: the
 * version is pinned in package.json and test/undici-parts.test.ts checks that each part is
 * the very object undici's index exports, so an upgrade that moves one fails there.
 */
import { createRequire } from "node:module";
import type { Agent as AgentClass, Dispatcher, errors as undiciErrors, interceptors } from "undici";

const require = createRequire(import.meta.url);

export const Agent = require("undici/lib/dispatcher/agent.js") as typeof AgentClass;
export const errors = require("undici/lib/core/errors.js") as typeof undiciErrors;
export const redirectInterceptor =
  require("undici/lib/interceptor/redirect.js") as typeof interceptors.redirect;

/** `Dispatcher.prototype.request` as undici's index installs it: called with the dispatcher as `this`. */
const dispatcherRequest = require("undici/lib/api/api-request.js") as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** undici's URL check (http: and https: only), as its top-level `request` applies it. */
const { parseURL } = require("undici/lib/core/util.js") as { parseURL(this: void, url: string): URL };

/** undici's top-level `request(url, options)` with a dispatcher of ours: the same checks, the same call. */
export function request(
  url: string,
  options: Omit<Dispatcher.RequestOptions, "origin" | "path"> & { dispatcher: Dispatcher },
): Promise<Dispatcher.ResponseData> {
  const parsed = parseURL(url);
  const { dispatcher, ...rest } = options;
  return dispatcherRequest.call(dispatcher, {
    ...rest,
    origin: parsed.origin,
    path: parsed.search ? `${parsed.pathname}${parsed.search}` : parsed.pathname,
  });
}
