/**
 * schemas/workflow.schema.json and the TypeScript types of a workflow file must describe the
 * same format. Each key list below is checked by the compiler against a type (`satisfies
 * Record<keyof …, true>` fails on a missing or extra key) and by this test against the
 * schema, so a field added to one side only fails here.
 */
import { describe, expect, test } from "vitest";
import { workflowSchema, type SchemaNode } from "../src/workflow/schema.js";
import { BUILTIN_DEFAULTS } from "../src/workflow/normalize.js";
import type {
  BudgetFile,
  CacheFile,
  DefaultsFile,
  JobFile,
  MatrixFile,
  ModelStepFile,
  PollFile,
  RetryFile,
  RunStepFile,
  WorkflowFile,
} from "../src/workflow/types.js";
import { parseDuration } from "../src/util/duration.js";

type Keys<T> = Record<keyof Required<T>, true>;

const workflowKeys = {
  version: true,
  name: true,
  concurrency: true,
  limits: true,
  defaults: true,
  vars: true,
  outputs: true,
  cache: true,
  budget: true,
  jobs: true,
} satisfies Keys<WorkflowFile>;
const budgetKeys = { max_cost: true, assume: true } satisfies Keys<BudgetFile>;
const defaultsKeys = { retry: true, timeout: true, poll: true } satisfies Keys<DefaultsFile>;
const retryKeys = {
  attempts: true,
  backoff: true,
  max_backoff: true,
  resubmit_unknown: true,
} satisfies Keys<RetryFile>;
const pollKeys = { interval: true, max_interval: true } satisfies Keys<PollFile>;
const cacheKeys = { ttl: true } satisfies Keys<CacheFile>;
const jobKeys = { for_each: true, key: true, steps: true } satisfies Keys<JobFile>;
const matrixKeys = { matrix: true } satisfies Keys<MatrixFile>;
const modelStepKeys = {
  id: true,
  name: true,
  description: true,
  model: true,
  input: true,
  needs: true,
  retry: true,
  timeout: true,
} satisfies Keys<ModelStepFile>;
const runStepKeys = {
  id: true,
  name: true,
  description: true,
  run: true,
  cwd: true,
  env: true,
  outputs: true,
  needs: true,
  retry: true,
  timeout: true,
} satisfies Keys<RunStepFile>;

const schema = workflowSchema();
const definitions = schema.definitions as Record<string, SchemaNode>;

const refName = (ref: unknown): string => (typeof ref === "string" ? ref.replace("#/definitions/", "") : "");

function propertiesOf(node: SchemaNode | undefined): string[] {
  const target = node?.$ref ? definitions[refName(node.$ref)] : node;
  return Object.keys(target?.properties ?? {}).sort();
}

const sorted = (keys: object): string[] => Object.keys(keys).sort();

describe("the workflow schema and WorkflowFile", () => {
  test.each([
    ["the top level", schema, workflowKeys],
    ["defaults", schema.properties?.defaults, defaultsKeys],
    ["retry", definitions.retry, retryKeys],
    ["defaults.poll", schema.properties?.defaults?.properties?.poll, pollKeys],
    ["cache", schema.properties?.cache, cacheKeys],
    ["budget", schema.properties?.budget, budgetKeys],
    ["a job", definitions.job, jobKeys],
    ["a matrix for_each", (definitions.job?.properties?.for_each?.oneOf as SchemaNode[])[2], matrixKeys],
    ["a model step", definitions.modelStep, modelStepKeys],
    ["a run step", definitions.runStep, runStepKeys],
  ])("name the same keys at %s", (_where, node, keys) => {
    expect(propertiesOf(node as SchemaNode)).toEqual(sorted(keys));
  });

  test("refuses unknown keys everywhere except the free-form maps", () => {
    const closed = [
      schema,
      schema.properties?.defaults,
      definitions.retry,
      definitions.job,
      definitions.modelStep,
      definitions.runStep,
    ];
    for (const node of closed) expect(node?.additionalProperties).toBe(false);
  });

  test("states the same defaults the loader applies", () => {
    const retry = definitions.retry!.properties!;
    expect(schema.properties?.concurrency?.default).toBe(BUILTIN_DEFAULTS.concurrency);
    expect(schema.properties?.outputs?.default).toBe(BUILTIN_DEFAULTS.outputs);
    expect(retry.attempts?.default).toBe(BUILTIN_DEFAULTS.retry.attempts);
    expect(parseDuration(String(retry.backoff?.default))).toBe(BUILTIN_DEFAULTS.retry.backoffMs);
    expect(parseDuration(String(retry.max_backoff?.default))).toBe(BUILTIN_DEFAULTS.retry.maxBackoffMs);
    expect(retry.resubmit_unknown?.default).toBe(BUILTIN_DEFAULTS.retry.resubmitUnknown);
    expect(parseDuration(String(schema.properties?.defaults?.properties?.timeout?.default))).toBe(
      BUILTIN_DEFAULTS.timeoutMs,
    );
    expect(parseDuration(String(schema.properties?.cache?.properties?.ttl?.default))).toBe(
      BUILTIN_DEFAULTS.cacheTtlMs,
    );
  });

  test("describes every property, for editors", () => {
    const undocumented: string[] = [];
    const visit = (node: SchemaNode | undefined, where: string): void => {
      for (const [name, property] of Object.entries(node?.properties ?? {})) {
        const target = property.$ref ? definitions[refName(property.$ref)] : property;
        if (!property.description && !target?.description) undocumented.push(`${where}.${name}`);
      }
    };
    visit(schema, "");
    for (const [name, node] of Object.entries(definitions)) visit(node, name);
    expect(undocumented).toEqual([]);
  });
});
