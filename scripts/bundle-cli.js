// Build step (after tsc): bundles the CLI (dist/cli/main.js and what it imports) into
// dist/bin/runflow.js and its chunks, split at each lazily imported command module, so a
// command loads a few files instead of hundreds (yaml alone is 73, runflow's own 150):
// apply reaches its first request about 0.1 s sooner (docs/decisions.md, "Start-up").
// Left outside, loaded from node_modules as before: better-sqlite3 (a native addon), the
// packages loaded with `require` at run time (ajv and ajv-formats for schemas the build did
// not precompile, undici's parts: src/util/validators.ts, src/api/undici-parts.ts), and the
// PostgreSQL and queue clients. dist/bin/meta.json says which module went into which file
// (test/cli-lazy-load.test.ts reads it). The library (dist/index.js) stays as tsc builds it.
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const outdir = path.join(root, "dist", "bin");
rmSync(outdir, { recursive: true, force: true });

const result = await build({
  entryPoints: { runflow: path.join(root, "dist", "cli", "main.js") },
  absWorkingDir: root,
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunk-[hash]",
  external: ["better-sqlite3", "ajv", "ajv-formats", "undici", "pg", "bullmq", "ioredis"],
  // The CommonJS packages bundled in (commander, yaml's dependents…) call `require`.
  banner: {
    js: 'import { createRequire as runflowCreateRequire } from "node:module"; const require = runflowCreateRequire(import.meta.url);',
  },
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning",
});

// Which source modules each output file holds, paths relative to the package.
const meta = Object.fromEntries(
  Object.entries(result.metafile.outputs)
    .filter(([file]) => file.endsWith(".js"))
    .map(([file, output]) => [path.basename(file), Object.keys(output.inputs).sort()]),
);
writeFileSync(path.join(outdir, "meta.json"), `${JSON.stringify(meta, null, 1)}\n`);
process.stdout.write(`bundled the CLI: dist/bin/runflow.js and ${Object.keys(meta).length - 1} chunks\n`);
