/**
 * The bad-input corpus, end to end: every broken workflow in test/fixtures/bad/ is given to
 * the built CLI as a user would (`runflow validate FILE`), and must be refused with exit 2,
 * one `FILE:LINE:COLUMN: message` per problem on stderr, and no stack trace. Each file is
 * test/fixtures/good/minimal.yaml with one mistake (the multi-* files with several);
 * manifest.json says where each problem is and what its message must name.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REPO_ROOT, assertCliBuilt, spawnCli, type CliResult } from "./helpers/spawn-cli.js";

/** A fragment: text (case-insensitive), `/regex/flags`, or a list of which one must match. */
type Fragment = string | string[];

interface ExpectedProblem {
  /** Base name of the file the location is in; default: the workflow file. */
  file?: string;
  /** The line, or the lines a good validator could equally point at. */
  line: number | number[];
  /** Only where unambiguous. */
  column?: number;
  /** What the message (with its hint) must contain. */
  contains: Fragment[];
}

interface CorpusEntry {
  file: string;
  mistake: string;
  exitCode: number;
  problems: ExpectedProblem[];
}

/** One problem as the CLI reported it. */
interface ReportedProblem {
  file: string;
  line: number;
  column: number;
  text: string;
}

const BAD_DIR = path.join("test", "fixtures", "bad");
const GOOD_FILE = path.join("test", "fixtures", "good", "minimal.yaml");
const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, BAD_DIR, "manifest.json"), "utf8")) as {
  entries: CorpusEntry[];
};
const entries = manifest.entries;
const singleMistakes = entries.filter((entry) => entry.problems.length === 1);
const multiMistakes = entries.filter((entry) => entry.problems.length > 1);

const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;
// Any token leaking into output is a bug; the sentinel makes a leak visible.
const TOKEN = "rf-test-token-must-never-be-printed";
// `\S+?` stops at the first `:LINE:COL:`, so a message may itself contain colons.
const LOCATION_LINE = /(?:^|\s)(\S+?):(\d+):(\d+):\s*(.*)$/;

let stateDir = "";

beforeAll(() => {
  assertCliBuilt();
  // validate must not touch state; an isolated path keeps the repository's own untouched if it does.
  stateDir = mkdtempSync(path.join(os.tmpdir(), "runflow-bad-corpus-"));
});
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

function validate(file: string, ...flags: string[]): Promise<CliResult> {
  return spawnCli(["validate", file, ...flags], {
    env: { RUNCOMFY_API_TOKEN: TOKEN, RUNFLOW_STATE: path.join(stateDir, "runflow.db") },
  });
}

/** Location lines of stderr, each with the indented lines (hints) that follow it. */
function parseStderr(stderr: string): ReportedProblem[] {
  const problems: ReportedProblem[] = [];
  for (const line of stderr.split("\n")) {
    const match = LOCATION_LINE.exec(line);
    if (match) {
      const [, file = "", lineNumber = "", column = "", message = ""] = match;
      problems.push({
        file: path.basename(file),
        line: Number(lineNumber),
        column: Number(column),
        text: message,
      });
    } else if (/^\s/.test(line) && problems.length > 0) {
      const last = problems[problems.length - 1];
      if (last) last.text += `\n${line.trim()}`;
    }
  }
  return problems;
}

interface JsonDiagnostic {
  file: string;
  line: number;
  column: number;
  message: string;
  path?: string;
  hint?: string;
}

function fromJson(diagnostics: readonly JsonDiagnostic[]): ReportedProblem[] {
  return diagnostics.map((d) => ({
    file: path.basename(d.file),
    line: d.line,
    column: d.column,
    text: d.hint ? `${d.message}\n${d.hint}` : d.message,
  }));
}

function fragmentMatches(fragment: string, text: string): boolean {
  const regex = /^\/(.+)\/([a-z]*)$/s.exec(fragment);
  if (regex) return new RegExp(regex[1] ?? "", regex[2]).test(text);
  return text.toLowerCase().includes(fragment.toLowerCase());
}

function satisfies(reported: ReportedProblem, expected: ExpectedProblem, workflowFile: string): boolean {
  const lines = Array.isArray(expected.line) ? expected.line : [expected.line];
  return (
    reported.file === (expected.file ?? workflowFile) &&
    lines.includes(reported.line) &&
    (expected.column === undefined || reported.column === expected.column) &&
    expected.contains.every((fragment) =>
      Array.isArray(fragment)
        ? fragment.some((option) => fragmentMatches(option, reported.text))
        : fragmentMatches(fragment, reported.text),
    )
  );
}

/** The expected problems no reported problem satisfies, rendered for a readable failure. */
function missingProblems(entry: CorpusEntry, reported: readonly ReportedProblem[]): string[] {
  return entry.problems
    .filter((expected) => !reported.some((problem) => satisfies(problem, expected, entry.file)))
    .map((expected) => {
      const where = `${expected.file ?? entry.file}:${[expected.line].flat().join("|")}:${expected.column ?? "*"}`;
      return `${where} containing ${JSON.stringify(expected.contains)}`;
    });
}

function fixture(entry: CorpusEntry): string {
  return path.join(BAD_DIR, entry.file);
}

/** The checks every refusal must pass, whatever the file. */
function expectCleanRefusal(entry: CorpusEntry, result: CliResult): void {
  expect(result.timedOut, `${entry.file}: validate did not finish`).toBe(false);
  expect(result.exitCode, `${entry.file}: exit code; stderr:\n${result.stderr}`).toBe(entry.exitCode);
  expect(result.stderr, `${entry.file}: a stack trace without --verbose`).not.toMatch(STACK_FRAME);
  expect(result.stdout + result.stderr).not.toContain(TOKEN);
}

describe("the corpus", () => {
  test("has a manifest entry for every workflow file in test/fixtures/bad, and a file for every entry", () => {
    const files = readdirSync(path.join(REPO_ROOT, BAD_DIR)).filter((name) => name.endsWith(".yaml"));
    expect(entries.map((entry) => entry.file).sort()).toEqual(files.sort());
  });

  test("holds at least 25 single-mistake files and a few with several mistakes", () => {
    expect(singleMistakes.length).toBeGreaterThanOrEqual(25);
    expect(multiMistakes.length).toBeGreaterThanOrEqual(2);
  });
});

describe("runflow validate on the valid base of the corpus", () => {
  test("accepts test/fixtures/good/minimal.yaml with exit 0", async () => {
    const result = await validate(GOOD_FILE);
    expect(result.exitCode, `stderr:\n${result.stderr}`).toBe(0);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });
});

describe.concurrent("runflow validate refuses a workflow with one mistake", () => {
  test.each(singleMistakes.map((entry) => [entry.file, entry] as const))(
    "%s: exit 2, file:line:col and the message on stderr, nothing on stdout",
    async (_name, entry) => {
      const result = await validate(fixture(entry));
      expectCleanRefusal(entry, result);
      expect(result.stdout).toBe("");
      expect(
        missingProblems(entry, parseStderr(result.stderr)),
        `${entry.mistake}; stderr:\n${result.stderr}`,
      ).toEqual([]);
    },
  );
});

describe.concurrent("runflow validate reports every problem at once", () => {
  test.each(multiMistakes.map((entry) => [entry.file, entry] as const))(
    "%s: all its problems in one run",
    async (_name, entry) => {
      const result = await validate(fixture(entry));
      expectCleanRefusal(entry, result);
      expect(result.stdout).toBe("");
      const reported = parseStderr(result.stderr);
      expect(missingProblems(entry, reported), `${entry.mistake}; stderr:\n${result.stderr}`).toEqual([]);
      expect(new Set(reported.map((problem) => problem.line)).size).toBeGreaterThanOrEqual(
        entry.problems.length,
      );
    },
  );
});

describe.concurrent("runflow validate --json", () => {
  const jsonCases = [
    "ratio-not-in-enum.yaml",
    "yaml-unclosed-quote.yaml",
    "csv-wrong-field-count.yaml",
    "multi-model-inputs.yaml",
  ];
  test.each(jsonCases)("%s: prints { ok: false, diagnostics } on stdout, with exit 2", async (file) => {
    const entry = entries.find((candidate) => candidate.file === file);
    if (!entry) throw new Error(`${file} is not in the manifest`);
    const result = await validate(fixture(entry), "--json");
    expectCleanRefusal(entry, result);
    const document = JSON.parse(result.stdout) as { ok: boolean; diagnostics: JsonDiagnostic[] };
    expect(document.ok).toBe(false);
    expect(missingProblems(entry, fromJson(document.diagnostics)), result.stdout).toEqual([]);
  });

  test("names the offending field's path in each diagnostic", async () => {
    const result = await validate(path.join(BAD_DIR, "ratio-not-in-enum.yaml"), "--json");
    const document = JSON.parse(result.stdout) as { diagnostics: JsonDiagnostic[] };
    expect(document.diagnostics.map((d) => d.path)).toContainEqual(expect.stringMatching(/ratio$/));
  });
});

describe("runflow validate --verbose", () => {
  test("still refuses with exit 2 and the location (a stack trace is allowed)", async () => {
    const entry = entries.find((candidate) => candidate.file === "unknown-step-reference.yaml");
    if (!entry) throw new Error("unknown-step-reference.yaml is not in the manifest");
    const result = await validate(fixture(entry), "--verbose");
    expect(result.exitCode, `stderr:\n${result.stderr}`).toBe(2);
    expect(missingProblems(entry, parseStderr(result.stderr)), result.stderr).toEqual([]);
  });
});
