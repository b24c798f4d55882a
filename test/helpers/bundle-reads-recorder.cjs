// Preloaded into a spawned CLI (`NODE_OPTIONS=--require=…/bundle-reads-recorder.cjs`): lists,
// in the file RUNFLOW_RECORD_BUNDLE_READS names, the JavaScript files of the CLI's bundle
// (dist/bin/; the precompiled validators as `../validators/NAME`) and of node_modules (as
// `node_modules/…`) the process has read by the time it creates its first POST (undici's
// `undici:request:create` channel, which the bundled undici publishes on) — or its first
// steps queued, for an apply that only follows a cluster's run — one a line.
// test/cli-compile-cache.test.ts reads it: how many files an apply opens before submitting.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { subscribe, unsubscribe } = require("node:diagnostics_channel");

const file = process.env.RUNFLOW_RECORD_BUNDLE_READS;
if (file) {
  const root = path.join(__dirname, "..", "..");
  const bundle = path.join(root, "dist", "bin");
  const validators = path.join(root, "dist", "validators");
  const modules = path.join(root, "node_modules") + path.sep;
  const read = [];
  const readFileSync = fs.readFileSync;
  fs.readFileSync = function recordedRead(target, ...rest) {
    if (typeof target === "string" && /\.c?js$/.test(target)) {
      const folder = path.dirname(target);
      if (folder === bundle) read.push(path.basename(target));
      else if (folder === validators) read.push(`../validators/${path.basename(target)}`);
      else if (target.startsWith(modules)) read.push(path.relative(root, target));
    }
    return readFileSync.call(this, target, ...rest);
  };
  const atFirstWork = () => {
    unsubscribe("undici:request:create", atFirstSubmission);
    unsubscribe("runflow:first-steps-queued", atFirstWork);
    fs.writeFileSync(file, read.map((name) => `${name}\n`).join(""));
  };
  const atFirstSubmission = ({ request }) => {
    if (request.method === "POST") atFirstWork();
  };
  subscribe("undici:request:create", atFirstSubmission);
  subscribe("runflow:first-steps-queued", atFirstWork);
}
