/**
 * JSON Schema validators without compiling them at every start. The schemas runflow ships
 * (the workflow schema, the input and output schemas of schemas/models/) are compiled by ajv
 * at build time into plain JavaScript (scripts/precompile-validators.js writes
 * dist/validators/KIND.cjs); a process then loads those functions and never ajv's compiler,
 * which with the compiling itself cost apply about 0.1 s before its first request. Any other
 * schema (a model pulled or edited by the user, a stale build, tests run from src/) is
 * compiled at run time by ajv, loaded only then. A precompiled validator is found by the
 * hash of its schema's canonical JSON, so an edited schema never meets an old validator.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type * as AjvModule from "ajv";
import type { Ajv, Options, ValidateFunction } from "ajv";
import { canonicalJson, sha256Hex } from "./canonical.js";

/** The three uses of JSON Schema, each with its own ajv set-up (below). */
export type ValidatorKind = "workflow" | "model-input" | "model-output";

// ajv and ajv-formats are CommonJS: `require` loads them synchronously, and only when needed.
const require = createRequire(import.meta.url);

/**
 * ajv as each kind uses it; the one definition for run time and for the build script, so a
 * precompiled validator behaves as the one ajv would compile now. `extra` is the build's
 * `code` option.
 */
export function newAjv(kind: ValidatorKind, extra: Options = {}): Ajv {
  const { Ajv: AjvClass } = require("ajv") as typeof AjvModule;
  if (kind === "workflow") {
    // `verbose`: error rewriting (workflow/structure.ts) needs each error's schema and data.
    const ajv = new AjvClass({
      allErrors: true,
      verbose: true,
      strictTypes: true,
      allowUnionTypes: true,
      ...extra,
    });
    // Read by editors (VS Code, yaml-language-server) and by our error messages; no check of its own.
    ajv.addKeyword({ keyword: "patternErrorMessage", schemaType: "string" });
    return ajv;
  }
  // CommonJS: the plugin is both `module.exports` and its `default`.
  const { default: addFormats } = require("ajv-formats") as { default: (ajv: Ajv) => Ajv };
  if (kind === "model-output") {
    // Not strict: catalogs write output schemas loosely, and an unknown keyword must not fail a result.
    const ajv = new AjvClass({ allErrors: true, strict: false, ...extra });
    addFormats(ajv);
    return ajv;
  }
  const ajv = new AjvClass({
    allErrors: true,
    useDefaults: true,
    strict: true,
    // Published schemas are not written for ajv's type-strictness; those checks only log.
    strictTypes: false,
    strictTuples: false,
    ...extra,
  });
  addFormats(ajv);
  // RunComfy's media rules: checked on the media itself (media-rules.ts), a no-op here.
  ajv.addKeyword({ keyword: "validations", schemaType: "array" });
  return ajv;
}

/** The name a schema's precompiled validator is exported under: `v` + the hash of its canonical JSON. */
export function precompiledName(schema: unknown): string {
  return `v${sha256Hex(canonicalJson(schema))}`;
}

/** Where the build writes the precompiled validators of a kind (dist/validators/KIND.cjs). */
export function precompiledFile(kind: ValidatorKind): string {
  return fileURLToPath(new URL(`../validators/${kind}.cjs`, import.meta.url));
}

const loaded = new Map<ValidatorKind, Record<string, ValidateFunction | undefined> | null>();

function precompiled(kind: ValidatorKind): Record<string, ValidateFunction | undefined> | null {
  let module = loaded.get(kind);
  if (module === undefined) {
    const file = precompiledFile(kind);
    module = existsSync(file) ? (require(file) as Record<string, ValidateFunction | undefined>) : null;
    loaded.set(kind, module);
  }
  return module;
}

/** The precompiled validator of `schema`, if the build made one for exactly this schema. */
export function precompiledValidator(kind: ValidatorKind, schema: unknown): ValidateFunction | undefined {
  return precompiled(kind)?.[precompiledName(schema)];
}

const runtimeAjv = new Map<ValidatorKind, Ajv>();

/**
 * The validator of `schema`: precompiled when the build made one, else compiled now by ajv
 * (which throws when the schema is not one it can read). The caller keeps it.
 */
export function validatorOf(kind: ValidatorKind, schema: Record<string, unknown>): ValidateFunction {
  const ready = precompiledValidator(kind, schema);
  if (ready) return ready;
  let ajv = runtimeAjv.get(kind);
  if (!ajv) {
    ajv = newAjv(kind);
    runtimeAjv.set(kind, ajv);
  }
  const validate = ajv.compile(schema);
  // The caller keeps the validator as long as it needs it; ajv's own cache would keep every
  // schema of every registry ever loaded by a long-running process.
  ajv.removeSchema(schema);
  return validate;
}
