// Preloaded into a spawned CLI (`NODE_OPTIONS=--require=…/late-builtins-recorder.cjs`): lists,
// in the file RUNFLOW_RECORD_LATE_BUILTINS names, the Node modules (those a program can
// require by name) the process loaded after it first set a V8 flag (the batch's heap flags,
// through node:v8's setFlagsFromString) and before it created its first POST (undici's
// `undici:request:create` channel), one a line. Node's own code cache is refused once a flag
// is set, so each of these was compiled from its source. test/cli-compile-cache.test.ts.
"use strict";
const fs = require("node:fs");
const Module = require("node:module");
const v8 = require("node:v8");
const { subscribe, unsubscribe } = require("node:diagnostics_channel");

const file = process.env.RUNFLOW_RECORD_LATE_BUILTINS;
if (file) {
  const named = new Set(Module.builtinModules.filter((name) => !name.startsWith("_")));
  const loadedNames = () =>
    process.moduleLoadList
      .filter((entry) => entry.startsWith("NativeModule "))
      .map((entry) => entry.slice("NativeModule ".length));
  let loadedBeforeFlags;
  const setFlagsFromString = v8.setFlagsFromString;
  v8.setFlagsFromString = function recordedSetFlags(flags) {
    loadedBeforeFlags ??= new Set(loadedNames());
    return setFlagsFromString.call(this, flags);
  };
  const atFirstSubmission = ({ request }) => {
    if (request.method !== "POST") return;
    unsubscribe("undici:request:create", atFirstSubmission);
    const late = loadedBeforeFlags
      ? loadedNames().filter((name) => named.has(name) && !loadedBeforeFlags.has(name))
      : [];
    fs.writeFileSync(file, late.map((name) => `${name}\n`).join(""));
  };
  subscribe("undici:request:create", atFirstSubmission);
}
