// Build step (after tsc): bundles the CLI (dist/cli/main.js and what it imports) into
// dist/bin/: main.js and its chunks, split at each lazily imported command module, so a
// command loads a few files instead of hundreds (yaml alone is 73, runflow's own 150), and
// the entry dist/bin/runflow.js (scripts/cli-entry.cjs: V8 flags and the code cache).
// docs/decisions.md, "Start-up", has the figures.
//
// Two passes. esbuild splits only ES modules, so the first pass bundles and splits as ES
// modules (in a folder of its own); the second turns each file into CommonJS, which Node 20
// loads faster than ES modules (no asynchronous loader per file) and which a code cache can
// cover (vm.Script takes cached data; ES modules cannot, without flags). dist/bin/package.json
// says the folder's .js files are CommonJS. `import.meta.url` becomes each file's own URL;
// dynamic imports become `require`. Source maps go through both passes to src/*.ts.
//
// Bundled: runflow, its pure-JS packages, undici's parts (src/api/undici-parts.ts), and the
// cluster's pg and BullMQ (in the chunks only a postgres:// state loads: ≈ 130 ms of
// resolving and compiling 277 files at each start of an apply or a worker on PostgreSQL,
// under the code cache once bundled). Left outside, loaded from node_modules:
// better-sqlite3's native addon, ajv and ajv-formats (required at run time only for schemas
// the build did not precompile: src/util/validators.ts), ioredis (bullmq requires it only
// for a redis:// queue, behind a `typeof require` test the bundle would not pass), and the
// optional native parts of pg and msgpackr (pg-native, msgpackr-extract), which runflow
// does without. dist/bin/meta.json says which
// module went into which file (test/cli-lazy-load.test.ts reads it). The library
// (dist/index.js) stays as tsc builds it.
import { createHash } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { COMMANDS } from "../dist/cli/commands/index.js";
import { BATCH_V8_FLAGS, SHORT_LIVED_COMMANDS } from "../dist/cli/v8-flags.js";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const outdir = path.join(root, "dist", "bin");
const esmDir = path.join(root, "dist", "bin-esm");
rmSync(outdir, { recursive: true, force: true });
rmSync(esmDir, { recursive: true, force: true });

// What `import.meta.url` becomes in the first pass; the second defines it per file, as a
// getter: five places of the bundle read it, and computing it at the top of each of the ≈ 55
// files an apply loads (pathToFileURL) cost its start ≈ 0.5 ms.
const MODULE_URL = "__runflowModule.url";

// undici's HTTP/1 and HTTP/2 clients require its fetch body code lazily, for a FormData body
// runflow never sends: left in node_modules, required by package path if ever needed,
// rather than bundled (nine files of fetch, FormData and WebIDL).
const undiciFetchOutside = {
  name: "undici-fetch-outside",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/web\// }, (args) => {
      if (!args.importer.includes(`${path.sep}node_modules${path.sep}undici${path.sep}`)) return undefined;
      const resolved = path.resolve(path.dirname(args.importer), args.path);
      const fromPackages = path.relative(path.join(root, "node_modules"), resolved).split(path.sep).join("/");
      return { path: fromPackages, external: true };
    });
  },
};

// Lines of bundled packages replaced as they are bundled, each for a start-up cost on a path
// runflow never takes. The build fails if a line is not found, so an upgrade that moves one
// is noticed here rather than silently paying for it again.
// - Two packages require at their top a Node module only such a path uses: undici's client
//   loads its HTTP/2 code (node:http2, about 5 ms) though runflow's agents never allow
//   HTTP/2; commander loads node:child_process (with node:dgram, about 1.5 ms) for
//   executable subcommands, which runflow has none of. Each is required where it is used.
// - pg asks, when its first client is made, whether it runs on Cloudflare Workers; on Node 20
//   (no `navigator`) by building a `Response`, which loads Node's own fetch: ≈ 30 ms of every
//   command on a PostgreSQL state (apply, each worker, status). runflow runs on Node only.
// - BullMQ's worker fetches its jobs one after the other (each a transaction) up to its
//   concurrency and starts none of them until the last fetch returned: a worker's share of a
//   run's first wave (≈ 20 jobs, ≈ 7 ms each) waited ≈ 0.13 s before the first of them began.
//   It now starts each job as soon as it has it and fetches the next meanwhile — still one
//   fetch at a time, and never more jobs than its concurrency (the loop's own condition).
const SOURCE_PATCHES = [
  {
    file: "node_modules/undici/lib/dispatcher/client.js",
    line: "const connectH2 = require('./client-h2.js')",
    replacement: "const connectH2 = (client, socket) => require('./client-h2.js')(client, socket)",
  },
  {
    file: "node_modules/commander/lib/command.js",
    line: "const childProcess = require('node:child_process');",
    replacement: "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };",
  },
  {
    file: "node_modules/bullmq/dist/cjs/classes/worker.js",
    line: "                const job = await fetchedJob;",
    replacement: "                const job = await fetchedJob;\n                if (job) break;",
  },
  {
    file: "node_modules/pg/lib/stream.js",
    line: "  if (isCloudflareRuntime()) {",
    replacement: "  if (false) {",
  },
];
// better-sqlite3's JavaScript is bundled (its 15 files were resolved, read and compiled,
// without the code cache, at each start of status and apply: ≈ 3 ms); its native addon
// stays in node_modules, required by its package path, where its install puts it
// (build/Release). The package finds the addon through the `bindings` package, which
// looks for the caller's package root from a stack trace: from the bundle that is
// runflow's, so `bindings` is given better-sqlite3's root instead, for an addon elsewhere.
const SQLITE_ADDON_LINE =
  "addon = DEFAULT_ADDON || (DEFAULT_ADDON = require('bindings')('better_sqlite3.node'));";
const SQLITE_ADDON = "better-sqlite3/build/Release/better_sqlite3.node";
const sqliteAddon = {
  name: "sqlite-addon",
  setup(build) {
    build.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, external: true }));
    const databaseJs = path.join(root, "node_modules", "better-sqlite3", "lib", "database.js");
    build.onLoad({ filter: /database\.js$/ }, (args) => {
      if (args.path !== databaseJs) return undefined;
      const source = readFileSync(args.path, "utf8");
      if (!source.includes(SQLITE_ADDON_LINE)) {
        throw new Error(`better-sqlite3/lib/database.js no longer has the line \`${SQLITE_ADDON_LINE}\``);
      }
      const load = `addon = DEFAULT_ADDON || (DEFAULT_ADDON = (() => {
  try {
    return require(${JSON.stringify(SQLITE_ADDON)});
  } catch (error) {
    if (error.code !== "MODULE_NOT_FOUND") throw error;
    const moduleRoot = path.dirname(require.resolve("better-sqlite3/package.json"));
    return require("bindings")({ bindings: "better_sqlite3.node", module_root: moduleRoot });
  }
})());`;
      return { contents: source.replace(SQLITE_ADDON_LINE, load), loader: "js" };
    });
  },
};

const sourcePatches = {
  name: "source-patches",
  setup(build) {
    for (const { file, line, replacement } of SOURCE_PATCHES) {
      const absolute = path.join(root, file);
      build.onLoad({ filter: new RegExp(`${path.basename(file).replace(".", "\\.")}$`) }, (args) => {
        if (args.path !== absolute) return undefined;
        const source = readFileSync(args.path, "utf8");
        if (!source.includes(line)) throw new Error(`${file} no longer has the line \`${line}\``);
        return { contents: source.replace(line, replacement), loader: "js" };
      });
    }
  },
};

const split = await build({
  entryPoints: { main: path.join(root, "dist", "cli", "main.js") },
  absWorkingDir: root,
  outdir: esmDir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunk-[hash]",
  external: ["ajv", "ajv-formats", "ioredis", "pg-native", "msgpackr-extract"],
  define: { "import.meta.url": MODULE_URL },
  plugins: [undiciFetchOutside, sourcePatches, sqliteAddon],
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning",
});

const files = readdirSync(esmDir).filter((name) => name.endsWith(".js"));
await build({
  entryPoints: files.map((name) => path.join(esmDir, name)),
  absWorkingDir: root,
  outdir,
  bundle: false,
  format: "cjs",
  platform: "node",
  target: "node20",
  // `import("./chunk-X.js")` as `require`: the chunk then loads through the code cache.
  supported: { "dynamic-import": false },
  banner: {
    js: `var __runflowModule = { get url() { const url = require("node:url").pathToFileURL(__filename).href; Object.defineProperty(this, "url", { value: url }); return url; } };`,
  },
  sourcemap: "linked",
  logLevel: "warning",
});
rmSync(esmDir, { recursive: true, force: true });
// A chunk `import()`ed by another is required as `__toESM(require("./chunk-X.js"), 1)`: the
// 1 is Node's rule for importing CommonJS (its `default` is the whole exports object),
// right for the packages left outside but wrong for a chunk, which was an ES module: a
// `default` export (listr2's `await import("cli-truncate")`) would come out as the module.
// 0 is esbuild's rule for a module marked __esModule, which each chunk is; same length, so
// the source maps still hold.
for (const name of files) {
  const file = path.join(outdir, name);
  const code = readFileSync(file, "utf8");
  const fixed = code.replace(/(__toESM\(require\("\.\/[^"]+\.js"\)), 1\)/g, "$1, 0)");
  if (fixed !== code) writeFileSync(file, fixed);
}
writeFileSync(path.join(outdir, "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`);

// The build's identity names its code cache folder: the hash of every file the cache covers,
// and of the entry that reads and writes the cache (its format).
const entryTemplate = readFileSync(path.join(root, "scripts", "cli-entry.cjs"), "utf8");
const buildHash = createHash("sha256").update(entryTemplate);
for (const name of [...files].sort()) buildHash.update(name).update(readFileSync(path.join(outdir, name)));
const validatorsDir = path.join(root, "dist", "validators");
for (const name of readdirSync(validatorsDir).sort()) {
  buildHash.update(name).update(readFileSync(path.join(validatorsDir, name)));
}
const entry = entryTemplate
  .replace("__RUNFLOW_BUILD_ID__", buildHash.digest("hex").slice(0, 16))
  .replace('["__RUNFLOW_COMMANDS__"]', JSON.stringify(COMMANDS.map((command) => command.name)))
  .replace('["__RUNFLOW_SHORT_LIVED__"]', JSON.stringify(SHORT_LIVED_COMMANDS))
  .replace('["__RUNFLOW_V8_FLAGS__"]', JSON.stringify(BATCH_V8_FLAGS));
const entryFile = path.join(outdir, "runflow.js");
writeFileSync(entryFile, entry);
chmodSync(entryFile, 0o755);

// Which source modules each output file holds, paths relative to the package.
const meta = Object.fromEntries(
  Object.entries(split.metafile.outputs)
    .filter(([file]) => file.endsWith(".js"))
    .map(([file, output]) => [path.basename(file), Object.keys(output.inputs).sort()]),
);
meta["runflow.js"] = ["scripts/cli-entry.cjs"];
writeFileSync(path.join(outdir, "meta.json"), `${JSON.stringify(meta, null, 1)}\n`);
process.stdout.write(
  `bundled the CLI: dist/bin/runflow.js, main.js and ${Object.keys(meta).length - 2} chunks\n`,
);
