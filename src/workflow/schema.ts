/**
 * The workflow JSON Schema (schemas/workflow.schema.json), the one definition of the file
 * format that editors, the loader and the tests share. Compiled once per process.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";

/** The subset of JSON Schema the workflow schema uses, as far as this code reads it. */
export interface SchemaNode {
  type?: string | string[];
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  required?: string[];
  minimum?: number;
  default?: unknown;
  patternErrorMessage?: string;
  [keyword: string]: unknown;
}

/** The nearest folder above this module holding package.json: the same from src/ and dist/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`runflow's package.json was not found above ${import.meta.url}`);
    dir = parent;
  }
  return dir;
}

export function workflowSchemaPath(): string {
  return path.join(packageRoot(), "schemas", "workflow.schema.json");
}

let schema: SchemaNode | undefined;
let validator: ValidateFunction | undefined;

export function workflowSchema(): SchemaNode {
  schema ??= JSON.parse(readFileSync(workflowSchemaPath(), "utf8")) as SchemaNode;
  return schema;
}

/** ajv with `verbose` on: error rewriting needs each error's schema and data. */
export function workflowValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strictTypes: true, allowUnionTypes: true });
    // Read by editors (VS Code, yaml-language-server) and by our error messages; no check of its own.
    ajv.addKeyword({ keyword: "patternErrorMessage", schemaType: "string" });
    validator = ajv.compile(workflowSchema());
  }
  return validator;
}
