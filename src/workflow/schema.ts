/**
 * The workflow JSON Schema (schemas/workflow.schema.json), the one definition of the file
 * format that editors, the loader and the tests share. Its validator is precompiled at build
 * time (util/validators.ts), compiled by ajv only when that is missing or stale.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { ValidateFunction } from "ajv";
import { packageRoot } from "../util/package-root.js";
import { validatorOf } from "../util/validators.js";

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

export function workflowSchemaPath(): string {
  return path.join(packageRoot(), "schemas", "workflow.schema.json");
}

let schema: SchemaNode | undefined;
let validator: ValidateFunction | undefined;

export function workflowSchema(): SchemaNode {
  schema ??= JSON.parse(readFileSync(workflowSchemaPath(), "utf8")) as SchemaNode;
  return schema;
}

/** Validates with `verbose` errors: error rewriting needs each error's schema and data. */
export function workflowValidator(): ValidateFunction {
  validator ??= validatorOf("workflow", workflowSchema());
  return validator;
}
