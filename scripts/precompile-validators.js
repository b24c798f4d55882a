// Build step (after tsc): compiles the JSON Schemas runflow ships into plain JavaScript with
// ajv's standalone code generation, so a run loads the validators and not ajv's compiler
// (src/util/validators.ts loads them; docs/decisions.md, "Start-up"). Writes
// dist/validators/{workflow,model-input,model-output}.cjs, one export per schema, named
// by the hash of the schema's canonical JSON. Deterministic: the same schemas give the
// same files. `--out DIR` writes them there instead (test/precompiled-validators.test.ts).
import { mkdirSync, writeFileSync } from "node:fs";
import process from "node:process";
import path from "node:path";
import { createRequire } from "node:module";
import { buildSync } from "esbuild";
import { workflowSchema } from "../dist/workflow/schema.js";
import { loadModelRegistry } from "../dist/models/registry.js";
import { outputSchemaOf } from "../dist/models/validate-output.js";
import { newAjv, precompiledFile, precompiledName } from "../dist/util/validators.js";

const require = createRequire(import.meta.url);
const standaloneCode = require("ajv/dist/standalone").default;
const outIndex = process.argv.indexOf("--out");
const outDir = outIndex > 0 ? process.argv[outIndex + 1] : undefined;

/** `schemas` by export name, sorted, without duplicates; a schema ajv refuses is left to run time. */
function generate(kind, schemas) {
  const byName = new Map();
  for (const schema of schemas) if (schema) byName.set(precompiledName(schema), schema);
  const ajv = newAjv(kind, { code: { source: true } });
  const exports = {};
  for (const name of [...byName.keys()].sort()) {
    try {
      ajv.addSchema(byName.get(name), name);
      ajv.getSchema(name);
      exports[name] = name;
    } catch (error) {
      ajv.removeSchema(name);
      process.stderr.write(`precompile-validators: ${kind} ${name} left to run time: ${error.message}\n`);
    }
  }
  const file = outDir ? path.join(outDir, path.basename(precompiledFile(kind))) : precompiledFile(kind);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, selfContained(standaloneCode(ajv, exports), file));
  return Object.keys(exports).length;
}

/**
 * The standalone code with the few functions of ajv's runtime it requires
 * (`ajv/dist/runtime/equal`, `ucs2length`, `ajv-formats`' formats) bundled in: a run loads
 * one file per kind, from the CLI's code cache and pack, instead of resolving and compiling
 * those from node_modules before its first request (docs/decisions.md, "Start-up").
 */
function selfContained(code, file) {
  const { outputFiles } = buildSync({
    stdin: { contents: code, resolveDir: process.cwd(), sourcefile: path.basename(file), loader: "js" },
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    legalComments: "none",
    minifyWhitespace: true,
    write: false,
  });
  return outputFiles[0].text;
}

const entries = loadModelRegistry({ includeBuiltin: true, cwd: path.sep }).list();
const counts = [
  ["workflow", generate("workflow", [workflowSchema()])],
  [
    "model-input",
    generate(
      "model-input",
      entries.map((entry) => entry.input_schema),
    ),
  ],
  [
    "model-output",
    generate(
      "model-output",
      entries.map((entry) => outputSchemaOf(entry)),
    ),
  ],
];
process.stdout.write(`precompiled validators: ${counts.map(([kind, n]) => `${kind} ${n}`).join(", ")}\n`);
