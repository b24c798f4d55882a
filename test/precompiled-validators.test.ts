/**
 * The validators precompiled at build time (scripts/precompile-validators.js →
 * dist/validators/*.cjs, loaded by src/util/validators.ts) against ajv compiling the same
 * schema now: the same verdict and the same errors, field for field (the workflow's errors
 * carry their schema and data, which the error rewriting reads), on every file of the
 * bad-input corpus and on broken model inputs and outputs; defaults filled in alike. A
 * schema the build did not see (a model edited or pulled by the user) is compiled at run time.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import type { ValidateFunction } from "ajv";
import { execa } from "execa";
import { beforeAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { loadModelRegistry } from "../src/models/index.js";
import { outputSchemaOf } from "../src/models/validate-output.js";
import { newAjv, precompiledName, validatorOf, type ValidatorKind } from "../src/util/validators.js";
import { workflowSchema } from "../src/workflow/schema.js";
import { REPO_ROOT, assertCliBuilt } from "./helpers/spawn-cli.js";

const require = createRequire(import.meta.url);
const entries = loadModelRegistry({ cwd: os.tmpdir() }).list();

/** The build's validator of `schema` (dist/, as the CLI loads it). */
function built(kind: ValidatorKind, schema: unknown): ValidateFunction {
  const exports = require(path.join(REPO_ROOT, "dist", "validators", `${kind}.cjs`)) as Record<
    string,
    ValidateFunction | undefined
  >;
  const validate = exports[precompiledName(schema)];
  if (!validate) throw new Error(`the build has no ${kind} validator for this schema: run npm run build`);
  return validate;
}

/** Both validators on copies of `data`: verdict, errors and the data after defaults, side by side. */
function bothOn(kind: ValidatorKind, schema: Record<string, unknown>, data: unknown) {
  const run = (validate: ValidateFunction) => {
    const copy = structuredClone(data);
    const valid = validate(copy);
    return { valid, errors: validate.errors ?? null, data: copy };
  };
  return { built: run(built(kind, schema)), runtime: run(newAjv(kind).compile(schema)) };
}

beforeAll(() => assertCliBuilt());

describe("the precompiled workflow validator", () => {
  const badDir = path.join(REPO_ROOT, "test", "fixtures", "bad");
  const corpus = readdirSync(badDir)
    .filter((name) => name.endsWith(".yaml"))
    .flatMap((name) => {
      try {
        return [[name, parse(readFileSync(path.join(badDir, name), "utf8"), { maxAliasCount: 100 })]];
      } catch {
        return []; // not YAML at all: refused before the schema
      }
    }) as [string, unknown][];

  test("the corpus reaches the schema check", () => {
    expect(corpus.length).toBeGreaterThan(30);
  });

  test.each(corpus)("%s: the same errors as ajv compiling the schema now", (_name, document) => {
    const { built: precompiled, runtime } = bothOn("workflow", workflowSchema(), document);
    expect(precompiled).toEqual(runtime);
  });

  test("a good workflow passes both", () => {
    const good: unknown = parse(
      readFileSync(path.join(REPO_ROOT, "test", "fixtures", "good", "minimal.yaml"), "utf8"),
    );
    const { built: precompiled, runtime } = bothOn("workflow", workflowSchema(), good);
    expect(precompiled.valid).toBe(true);
    expect(precompiled).toEqual(runtime);
  });
});

describe("the precompiled model validators", () => {
  const inputs: unknown[] = [
    {},
    { prompt: 42 },
    { prompt: "x".repeat(5_000), image_url: "https://example.com/a.png", video_url: 7, ratio: "1:1" },
    { prompt: "a boat", image_url: "https://example.com/a.png", unknown_field: true },
    {
      prompt: "a boat",
      image_url: "https://example.com/a.png",
      video_url: "https://e.com/v.mp4",
      ratio: "848:480",
    },
    { prompt: "a boat", prompt_optimizer: "yes", seed: -1.5 },
    [],
    "text",
  ];

  test("every model shipped has both its validators built", () => {
    expect(entries.length).toBeGreaterThan(0);
    for (const entry of entries) {
      expect(() => built("model-input", entry.input_schema)).not.toThrow();
      const output = outputSchemaOf(entry);
      if (output) expect(() => built("model-output", output)).not.toThrow();
    }
  });

  test.each(entries.map((entry) => [entry.model_id, entry] as const))(
    "%s: inputs get the same errors and the same defaults",
    (_id, entry) => {
      for (const input of inputs) {
        const { built: precompiled, runtime } = bothOn("model-input", entry.input_schema, input);
        expect(precompiled).toEqual(runtime);
      }
    },
  );

  test.each(entries.flatMap((entry) => (outputSchemaOf(entry) ? [[entry.model_id, entry] as const] : [])))(
    "%s: outputs get the same errors",
    (_id, entry) => {
      const schema = outputSchemaOf(entry)!;
      for (const output of [
        { video: "not a uri" },
        { images: ["https://e.com/a.png", 3] },
        { video: 1 },
        {},
      ]) {
        const { built: precompiled, runtime } = bothOn("model-output", schema, output);
        expect(precompiled).toEqual(runtime);
      }
    },
  );
});

describe("validatorOf", () => {
  test("a schema the build did not see is compiled at run time", () => {
    const edited = { type: "object", required: ["prompt"], properties: { prompt: { type: "string" } } };
    const validate = validatorOf("model-input", edited);
    expect(validate({})).toBe(false);
    expect(validate.errors?.[0]?.params).toEqual({ missingProperty: "prompt" });
  });
});

describe("the build step (scripts/precompile-validators.js)", () => {
  test("writes the same files each time, the ones in dist/", async () => {
    const script = path.join(REPO_ROOT, "scripts", "precompile-validators.js");
    const [first, second] = [
      mkdtempSync(path.join(os.tmpdir(), "rf-validators-")),
      mkdtempSync(path.join(os.tmpdir(), "rf-validators-")),
    ];
    try {
      for (const dir of [first, second])
        await execa(process.execPath, [script, "--out", dir], { cwd: REPO_ROOT });
      for (const kind of ["workflow", "model-input", "model-output"]) {
        const again = readFileSync(path.join(second, `${kind}.cjs`), "utf8");
        expect(readFileSync(path.join(first, `${kind}.cjs`), "utf8")).toBe(again);
        expect(readFileSync(path.join(REPO_ROOT, "dist", "validators", `${kind}.cjs`), "utf8")).toBe(again);
      }
    } finally {
      rmSync(first, { recursive: true, force: true });
      rmSync(second, { recursive: true, force: true });
    }
  });
});
