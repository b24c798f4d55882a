/**
 * How the CLI ends when it does nothing: `runflow` alone prints its help and exits 2, and
 * with `--json` every error is one JSON object on stderr, located where it can be.
 */
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { Output } from "../src/cli/context.js";
import { runCli } from "../src/cli/program.js";
import { CHAIN, testdir } from "./workflow-testdir.js";

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const output: Output = {
    stdout: (text) => (stdout += text.endsWith("\n") ? text : `${text}\n`),
    stderr: (text) => (stderr += text.endsWith("\n") ? text : `${text}\n`),
  };
  const code = await runCli(argv, output);
  return { code, stdout, stderr };
}

/** stderr as the one JSON object it must be. */
function onlyJson(stderr: string): Record<string, unknown> {
  const lines = stderr.split("\n").filter((line) => line !== "");
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

describe("runflow with nothing to do", () => {
  test("`runflow` alone prints the help on stderr and exits 2; `runflow help` exits 0", async () => {
    const alone = await run();
    expect(alone.code).toBe(2);
    expect(alone.stdout).toBe("");
    expect(alone.stderr).toMatch(/^Usage: runflow \[options\] \[command\]/);
    expect(alone.stderr).toContain("apply [options] <file>");

    expect(onlyJson((await run("--json")).stderr)).toMatchObject({
      event: "error",
      message: "no command given",
      exit_code: 2,
    });

    const help = await run("help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: runflow/);
  });
});

describe("errors with --json", () => {
  test("an invalid workflow is one JSON object on stderr, with its location and every problem", async () => {
    const file = path.join(
      testdir({ "flow.yaml": CHAIN.replace("name: chain\n", "name: chain\nconcurrency: 0\n") }),
      "flow.yaml",
    );
    const { code, stdout, stderr } = await run("--json", "apply", file);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    const error = onlyJson(stderr);
    expect(error).toMatchObject({ event: "error", code: "workflow_invalid", exit_code: 2 });
    expect(error.location).toMatch(/flow\.yaml:3:\d+$/);
    expect(error.message).toMatch(/concurrency/);
    expect(error.problems).toEqual([expect.objectContaining({ location: error.location })]);
  });

  test("a bad option and a missing state database are JSON too, with the hint", async () => {
    const option = await run("apply", "--bogus", "x.yaml", "--json");
    expect(option.code).toBe(2);
    expect(onlyJson(option.stderr)).toEqual({
      event: "error",
      code: "usage",
      message: "unknown option '--bogus'",
      exit_code: 2,
    });

    const state = path.join(testdir({}), "none.db");
    const missing = await run("status", "--json", "--state", state);
    expect(missing.code).toBe(2);
    const error = onlyJson(missing.stderr);
    expect(error).toMatchObject({ event: "error", exit_code: 2 });
    expect(error.message).toContain(state);
    expect(error.hint).toContain("runflow apply");
  });

  test("without --json, errors stay text", async () => {
    const { code, stderr } = await run("apply", "--bogus", "x.yaml");
    expect(code).toBe(2);
    expect(stderr).toBe("error: unknown option '--bogus'\n(run with --help for usage)\n");
  });
});
