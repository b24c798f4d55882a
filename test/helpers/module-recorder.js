// Preloaded into a spawned CLI (`NODE_OPTIONS=--import=…/module-recorder.js`) to list every
// module it loads, one per line, in the file RUNFLOW_RECORD_MODULES names: the URL of each
// module imported (from a resolve hook, which sees ES modules and the CommonJS packages
// they import), then at exit every CommonJS file loaded (the require cache, which holds
// the files those packages require in turn) and Node's own modules loaded (`node:NAME`). test/cli-lazy-load.test.ts reads the list.
// With RUNFLOW_RECORD_FIRST_REQUEST, also the CommonJS files and Node modules loaded when the
// process creates its first HTTP request (undici's `undici:request:create` channel, which the
// bundled undici publishes on), in that file: what a command loads before its first request.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { appendFileSync, writeFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import process from "node:process";
import { isMainThread } from "node:worker_threads";

const file = process.env.RUNFLOW_RECORD_MODULES;
const firstRequestFile = process.env.RUNFLOW_RECORD_FIRST_REQUEST;

/** The CommonJS files in the require cache and Node's own modules loaded so far, one a line. */
function loadedNow(require) {
  const loaded = Object.keys(require.cache).map((name) => `${name}\n`);
  // Node's own modules, as `node:NAME` (the require cache holds none of them).
  const builtins = process.moduleLoadList
    .filter((entry) => entry.startsWith("NativeModule ") && !entry.includes("internal/"))
    .map((entry) => `node:${entry.slice("NativeModule ".length)}\n`);
  return [...loaded, ...builtins].join("");
}

// Loaded twice: as the preload (main thread), and by register() as the hooks module, which
// Node runs on a thread of its own.
if (isMainThread && file) {
  register(import.meta.url, { data: { file } });
  const require = createRequire(import.meta.url);
  process.on("exit", () => appendFileSync(file, loadedNow(require)));
  if (firstRequestFile) {
    const atFirstRequest = () => {
      unsubscribe("undici:request:create", atFirstRequest);
      writeFileSync(firstRequestFile, loadedNow(require));
    };
    subscribe("undici:request:create", atFirstRequest);
  }
}

let recordTo;

export function initialize(data) {
  recordTo = data.file;
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(recordTo, `${resolved.url}\n`);
  return resolved;
}
