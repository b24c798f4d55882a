/**
 * Fuzzing the loader with broken versions of real workflows: the example workflows and the
 * test fixtures, each mutated a few times over (keys deleted and duplicated, types swapped,
 * aliases including ones that refer to themselves, deep nesting, huge strings, odd unicode,
 * bad templates, broken indentation). Whatever the file, runflow must answer "valid" or a
 * list of problems with their locations: never a crash, never "report it if it persists".
 *
 * Deterministic: a seeded PRNG, so a failure names its mutant and repeats. Most mutants go
 * through checkWorkflow in-process; a few through the built CLI (`validate` and
 * `apply --dry-run`) against an emulator that must see no submission at all.
 */
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node } from "yaml";
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from "vitest";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { loadModelRegistry } from "../src/models/registry.js";
import { checkWorkflow } from "../src/workflow/load.js";
import { REPO_ROOT, spawnCli } from "./helpers/spawn-cli.js";

// A longer hunt on one machine: RUNFLOW_FUZZ_SEED=7 RUNFLOW_FUZZ_MUTANTS=20000 RUNFLOW_FUZZ_CLI_MUTANTS=40 …
const SEED = Number(process.env.RUNFLOW_FUZZ_SEED ?? 0x5eed_f00d);
const IN_PROCESS_MUTANTS = Number(process.env.RUNFLOW_FUZZ_MUTANTS ?? 360);
const CLI_MUTANTS = Number(process.env.RUNFLOW_FUZZ_CLI_MUTANTS ?? 4);

/** mulberry32: small, fast, and the same sequence on every machine. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Random = () => number;
const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const int = (random: Random, max: number): number => Math.floor(random() * max);

const ODD_TEXT = [
  "\u0000",
  "\u202e\u2066right-to-left\u2069",
  "\ufeff",
  "e\u0301\u0301\u0301",
  "🐈‍⬛ 👩🏽‍🚀",
  "\u2028\u2029",
  "\u0085",
  "\ud800",
  "Ω≈ç√∫",
  "\u001b[31mred\u001b[0m",
  "\\u0000 \\x00 %00",
  "",
];

const BAD_TEMPLATES = [
  "${{",
  "${{ }}",
  "${{ item. }}",
  "${{ item.prompt }",
  "${{ steps.animate.output.video",
  "${{ env.RUNCOMFY_API_TOKEN }}",
  "${{ env.YOUR_API_TOKEN }}",
  "${{ item.__proto__.polluted }}",
  "${{ item.constructor.name }}",
  "${{ vars.__proto__ }}",
  "${{ steps..output }}",
  "${{ steps.nope.output.video }}",
  "${{ run.id }}${{ job.key }}${{ workflow.name }}",
  "${{ item['a'] }}",
  "${{ ${{ item.id }} }}",
  "$${{ item.id }}}}",
];

/** A random value of a type other than `value`'s: string ↔ number ↔ list ↔ map ↔ bool ↔ null. */
function otherType(random: Random, value: unknown): unknown {
  const makers: [string, () => unknown][] = [
    ["string", () => pick(random, ["", "10s", "x", "1e309", "-1", "true", "null", pick(random, ODD_TEXT)])],
    ["number", () => pick(random, [0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 0.0001])],
    ["list", () => pick(random, [[], [1, 2], [[]], [{}], ["a", null]])],
    ["map", () => pick(random, [{}, { a: 1 }, { s: 1 }, { matrix: {} }, { __proto__: { x: 1 } }])],
    ["bool", () => random() < 0.5],
    ["null", () => null],
  ];
  const kind = Array.isArray(value)
    ? "list"
    : value === null
      ? "null"
      : typeof value === "object"
        ? "map"
        : typeof value === "boolean"
          ? "bool"
          : typeof value;
  return pick(
    random,
    makers.filter(([name]) => name !== kind),
  )[1]();
}

/** Every collection and scalar node of the document, with its parent collection. */
function nodesOf(
  node: unknown,
  parent: Node | undefined,
  out: { node: Node; parent: Node | undefined }[],
): void {
  if (isMap(node)) {
    out.push({ node, parent });
    for (const pair of node.items) nodesOf(pair.value, node, out);
  } else if (isSeq(node)) {
    out.push({ node, parent });
    for (const item of node.items) nodesOf(item, node, out);
  } else if (isScalar(node)) out.push({ node, parent });
}

/** Mutations of the parsed document (then written back as YAML). */
function mutateDocument(random: Random, text: string): string | undefined {
  const doc: Document = parseDocument(text, { uniqueKeys: false });
  if (doc.errors.length > 0) return undefined;
  const nodes: { node: Node; parent: Node | undefined }[] = [];
  nodesOf(doc.contents, undefined, nodes);
  if (nodes.length === 0) return undefined;
  const { node, parent } = pick(random, nodes);
  const kind = int(random, 5);
  if (kind === 0 && isMap(node) && node.items.length > 0) {
    // Delete a key.
    node.items.splice(int(random, node.items.length), 1);
  } else if (kind === 1 && isMap(node) && node.items.length > 0) {
    // Duplicate a key (the same key twice in one map).
    const pair = pick(random, node.items);
    node.items.push(doc.createPair(isScalar(pair.key) ? pair.key.value : "k", otherType(random, null)));
  } else if (kind === 2 && (isMap(node) || isSeq(node))) {
    // A self-referencing alias: the collection contains an alias of itself.
    node.anchor = "self";
    const alias = doc.createAlias(node, "self");
    if (isMap(node)) node.items.push(doc.createPair("loop", alias));
    else node.items.push(alias);
  } else if (kind === 3 && parent && (isMap(parent) || isSeq(parent))) {
    // An alias of an ancestor put in the node's place.
    parent.anchor = "up";
    const alias = doc.createAlias(parent, "up");
    if (isMap(parent)) {
      const pair = parent.items.find((item) => item.value === node);
      if (pair) pair.value = alias;
    } else {
      const index = parent.items.indexOf(node);
      if (index >= 0) parent.items[index] = alias;
    }
  } else {
    // Swap a value's type.
    const replacement = doc.createNode(
      otherType(random, isScalar(node) ? node.value : isSeq(node) ? [] : {}),
    );
    if (parent && isMap(parent)) {
      const pair = parent.items.find((item) => item.value === node);
      if (pair) pair.value = replacement;
    } else if (parent && isSeq(parent)) {
      const index = parent.items.indexOf(node);
      if (index >= 0) parent.items[index] = replacement;
    } else doc.contents = replacement;
  }
  try {
    return doc.toString({ lineWidth: 0 });
  } catch {
    return undefined;
  }
}

/** Mutations of the text, line by line: what an editor (or a careless paste) does. */
function mutateText(random: Random, text: string): string {
  const lines = text.split("\n");
  const at = int(random, lines.length);
  const line = lines[at] ?? "";
  const valueStart = line.indexOf(": ");
  const withValue = (value: string): string =>
    valueStart >= 0 ? `${line.slice(0, valueStart + 2)}${value}` : `${line}${value}`;
  switch (int(random, 10)) {
    case 0: // delete a line
      lines.splice(at, 1);
      break;
    case 1: // duplicate a line (a key twice)
      lines.splice(at, 0, line);
      break;
    case 2: // broken indentation: a space more or less, or a tab
      lines[at] = pick(random, [` ${line}`, line.replace(/^ /, ""), `\t${line.trimStart()}`, `   ${line}`]);
      break;
    case 3: // a huge string
      lines[at] = withValue(JSON.stringify("x".repeat(pick(random, [10_000, 200_000]))));
      break;
    case 4: // odd unicode
      lines[at] = withValue(JSON.stringify(`a${pick(random, ODD_TEXT)}b`));
      break;
    case 5: // a bad template
      lines[at] = withValue(JSON.stringify(pick(random, BAD_TEMPLATES)));
      break;
    case 6: {
      // deep nesting, in flow or block style
      const depth = pick(random, [50, 70, 500, 5_000]);
      lines[at] = withValue(
        random() < 0.5
          ? `${"[".repeat(depth)}1${"]".repeat(depth)}`
          : `${"{a: ".repeat(depth)}1${"}".repeat(depth)}`,
      );
      break;
    }
    case 7: // an anchor on a map, and an alias of it inside it
      if (/:\s*$/.test(line)) {
        const indent = /^ */.exec(lines[at + 1] ?? "")?.[0] ?? "  ";
        lines[at] = `${line.trimEnd()} &loop`;
        lines.splice(at + 1, 0, `${indent}loop_back: *loop`);
      } else lines[at] = withValue("&v { self: *v }");
      break;
    case 8: // an alias of an anchor that does not exist, or an unknown tag
      lines[at] = withValue(pick(random, ["*nowhere", "!!js/function 'x'", "!custom 1", "!!binary AAAA"]));
      break;
    default: // a merge key of a scalar, or a stray character
      lines[at] = pick(random, [
        `${line} <<: 1`,
        `${line}:`,
        `${line} #`,
        `- ${line}`,
        `${line}"`,
        `<<: *nowhere`,
      ]);
  }
  return lines.join("\n");
}

function mutate(random: Random, text: string): string {
  let current = text;
  const rounds = 1 + int(random, 3);
  for (let round = 0; round < rounds; round++) {
    const next = random() < 0.6 ? mutateDocument(random, current) : undefined;
    current = next ?? mutateText(random, current);
  }
  return current;
}

interface Seed {
  /** The folder the seed is copied to (with its items/ folder), where its mutants are written. */
  dir: string;
  name: string;
  text: string;
}

let root = "";
const seeds: Seed[] = [];
const registry = loadModelRegistry();

/** Copies `from` (its .yaml files and items/) under the temp root, and returns its seeds. */
function copySeeds(from: string, as: string): void {
  const dir = path.join(root, as);
  mkdirSync(path.join(dir, "items"), { recursive: true });
  const source = path.join(REPO_ROOT, from);
  for (const name of readdirSync(source)) {
    if (!name.endsWith(".yaml")) continue;
    seeds.push({ dir, name, text: readFileSync(path.join(source, name), "utf8") });
  }
  const items = path.join(source, "items");
  try {
    for (const name of readdirSync(items))
      copyFileSync(path.join(items, name), path.join(dir, "items", name));
  } catch {
    // No items folder.
  }
}

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), "runflow-fuzz-"));
  copySeeds("workflows", "workflows");
  copySeeds("test/fixtures/good", "good");
  copySeeds("test/fixtures/bad", "bad");
});
/** A failing mutant is left on disk (its path is in the failure) to look at. */
let keepMutants = false;
afterAll(() => {
  if (!keepMutants) rmSync(root, { recursive: true, force: true });
});

function writeMutant(seed: Seed, index: number, text: string): string {
  const file = path.join(seed.dir, `mutant-${index}-${seed.name}`);
  writeFileSync(file, text);
  return file;
}

describe("fuzzing the workflow loader with mutated example workflows", () => {
  test(`${IN_PROCESS_MUTANTS} mutants: each is valid or refused with located problems, never a crash`, async () => {
    onTestFailed(() => {
      keepMutants = true;
    });
    const random = prng(SEED);
    const outcomes = { valid: 0, refused: 0 };
    for (let index = 0; index < IN_PROCESS_MUTANTS; index++) {
      const seed = seeds[index % seeds.length]!;
      const file = writeMutant(seed, index, mutate(random, seed.text));
      const label = `mutant ${index} of ${seed.name} (seed ${SEED}; kept at ${file} when this fails)`;
      let check;
      try {
        check = await checkWorkflow(file, { registry, env: { HOME: "/home/user" } });
      } catch (error) {
        throw new Error(`${label}: checkWorkflow threw ${(error as Error).stack ?? String(error)}`);
      }
      if (check.workflow) {
        expect(check.diagnostics, label).toEqual([]);
        outcomes.valid++;
      } else {
        expect(check.diagnostics.length, label).toBeGreaterThan(0);
        for (const diagnostic of check.diagnostics) {
          expect(diagnostic.location, `${label}: ${diagnostic.message}`).toBeDefined();
          expect(diagnostic.location!.line, label).toBeGreaterThanOrEqual(1);
          expect(diagnostic.location!.column, label).toBeGreaterThanOrEqual(1);
        }
        outcomes.refused++;
      }
      rmSync(file);
    }
    // The mutations must mostly break things, and must not all be caught by the YAML parser alone.
    expect(outcomes.refused).toBeGreaterThan(IN_PROCESS_MUTANTS / 2);
  }, 120_000);

  describe("through the built CLI", () => {
    let api: RunningEmulator;
    beforeAll(async () => {
      api = await startEmulator({ duration: 20 });
    });
    afterAll(async () => api.close());

    test(`${CLI_MUTANTS} mutants through validate and apply --dry-run: exit 0 or 2 with a location, nothing submitted`, async () => {
      onTestFailed(() => {
        keepMutants = true;
      });
      const random = prng(SEED ^ 0xc11);
      const state = path.join(root, "state", "runflow.db");
      for (let index = 0; index < CLI_MUTANTS; index++) {
        const seed = seeds[int(random, seeds.length)]!;
        // Media on loopback (the emulator), so a mutant that stays valid fetches nothing outside.
        const local = seed.text.replace(
          /https?:\/\/[a-z.]*example\.com[^"\s]*/g,
          `${api.url}/media/image.png?w=640&h=480`,
        );
        const file = writeMutant(seed, 10_000 + index, mutate(random, local));
        for (const args of [
          ["validate", file],
          ["apply", file, "--dry-run"],
        ]) {
          const result = await spawnCli(args, {
            cwd: seed.dir,
            env: { RUNCOMFY_API_TOKEN: "rf-fuzz-token", RUNCOMFY_BASE_URL: api.url, RUNFLOW_STATE: state },
            timeoutMs: 60_000,
          });
          const label = `${args.join(" ")} (seed ${SEED}; the mutant is kept): ${result.stderr.slice(0, 2_000)}`;
          expect([0, 2], label).toContain(result.exitCode);
          expect(result.stderr, label).not.toContain("report it if it persists");
          expect(result.stderr, label).not.toContain("rf-fuzz-token");
          if (result.exitCode === 2) expect(result.stderr, label).toMatch(/:\d+:\d+: /);
        }
      }
      expect(api.submissions().total).toBe(0);
    }, 120_000);
  });
});
