/**
 * What the docs and the help tell a user to type: never `npx runflow`. Outside the checkout
 * npx fetches `runflow` from the npm registry — a name this project does not own — and
 * under cron it installs without asking, with the API token in its environment.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { Output } from "../src/cli/context.js";
import { runCli } from "../src/cli/program.js";
import { REPO_ROOT } from "./helpers/spawn-cli.js";

/** The commands a Markdown file shows: its fenced code blocks and inline code spans. */
function shownCommands(markdown: string): string[] {
  const fenced = [...markdown.matchAll(/```[^\n]*\n([\s\S]*?)```/g)].map((match) => match[1]!);
  const inline = [...markdown.replaceAll(/```[\s\S]*?```/g, "").matchAll(/`([^`\n]+)`/g)].map(
    (match) => match[1]!,
  );
  return [...fenced, ...inline];
}

async function helpOf(argv: string[]): Promise<string> {
  let text = "";
  const output: Output = { stdout: (t) => (text += t), stderr: (t) => (text += t) };
  await runCli(argv, output);
  return text;
}

describe("how runflow is called", () => {
  const docs = [
    "README.md",
    ...readdirSync(path.join(REPO_ROOT, "docs"))
      .filter((name) => name.endsWith(".md"))
      .map((name) => path.join("docs", name)),
  ];

  test.each(docs)("%s shows no `npx runflow`", (file) => {
    const commands = shownCommands(readFileSync(path.join(REPO_ROOT, file), "utf8"));
    expect(commands.filter((command) => /\bnpx\s+runflow\b/.test(command))).toEqual([]);
  });

  test("the README's crontab line calls node and runflow by their full paths", () => {
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const crontab = /```crontab\n([\s\S]*?)```/.exec(readme)![1]!;
    const line = crontab.split("\n").find((text) => /apply /.test(text))!;
    expect(line).toMatch(/ \/\S+\/node \/\S+\/dist\/bin\/runflow\.js apply /);
  });

  test("no --help text suggests npx", async () => {
    const helps = await Promise.all(
      [[], ["apply"], ["retry"], ["cancel"], ["emulator"], ["status"]].map((words) =>
        helpOf([...words, "--help"]),
      ),
    );
    for (const help of helps) expect(help).not.toMatch(/\bnpx\b/);
  });
});
