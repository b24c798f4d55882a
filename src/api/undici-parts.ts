/**
 * The parts of undici runflow uses, each from its own file. undici's `index.js` loads all of
 * its 112 files (mocks, caches, fetch, websockets) — 70–120 ms of apply's start — where
 * these parts need 27 (≈ 25 ms). The paths are undici's own, not its public API: the
 * version is pinned in package.json and test/undici-parts.test.ts checks that each part is
 * the very object undici's index exports, so an upgrade that moves one fails there.
 *
 * Static imports (typed in undici-lib.d.ts), so the CLI's bundle holds these files and
 * the compile cache covers them (scripts/bundle-cli.js): loaded one by one from
 * node_modules they cost apply's start another 20 ms.
 */
import type { Agent as AgentClass, Dispatcher, errors as undiciErrors, interceptors } from "undici";
import AgentPart from "undici/lib/dispatcher/agent.js";
import errorsPart from "undici/lib/core/errors.js";
import redirectPart from "undici/lib/interceptor/redirect.js";
import dispatcherRequestPart from "undici/lib/api/api-request.js";
import utilPart from "undici/lib/core/util.js";

export const Agent = AgentPart as typeof AgentClass;
export const errors = errorsPart as typeof undiciErrors;
export const redirectInterceptor = redirectPart as typeof interceptors.redirect;

/** `Dispatcher.prototype.request` as undici's index installs it: called with the dispatcher as `this`. */
const dispatcherRequest = dispatcherRequestPart as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** undici's URL check (http: and https: only), as its top-level `request` applies it. */
const { parseURL } = utilPart as { parseURL(this: void, url: string): URL };

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
