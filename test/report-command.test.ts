import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runReportCommand } from "../src/cli/commands/report.js";
import { runCli } from "../src/cli/program.js";
import type { Output } from "../src/cli/context.js";
import { ExitCode } from "../src/errors.js";
import type { RunReport } from "../src/report/index.js";
import { RUN_ID, seedReportRun, tempRoot } from "./report-fixture.js";

function capture(): Output & { out: string; err: string } {
  const output = {
    out: "",
    err: "",
    stdout: (text: string) => {
      output.out += text.endsWith("\n") ? text : `${text}\n`;
    },
    stderr: (text: string) => {
      output.err += text.endsWith("\n") ? text : `${text}\n`;
    },
  };
  return output;
}

describe("runflow report", () => {
  it("writes an HTML gallery of the latest run to reports/ beside the state folder and says where", async () => {
    const seeded = seedReportRun();
    const output = capture();
    expect(await runCli(["report", "--state", seeded.statePath], output)).toBe(ExitCode.ok);
    const file = path.join(seeded.root, "reports", `${RUN_ID}.html`);
    expect(readFileSync(file, "utf8")).toMatch(/^<!doctype html>/);
    expect(output.out).toBe(`report of run ${RUN_ID} written to ${file}\n`);
    expect(output.err).toBe("");
  });

  it("writes Markdown to the file --out names, and infers the format from its extension", async () => {
    const seeded = seedReportRun();
    const explicit = path.join(seeded.root, "morning.txt");
    const inferred = path.join(seeded.root, "morning.md");
    const output = capture();
    expect(
      await runCli(
        ["report", RUN_ID, "--format", "md", "--out", explicit, "--state", seeded.statePath],
        output,
      ),
    ).toBe(0);
    expect(await runCli(["report", RUN_ID, "--out", inferred, "--state", seeded.statePath], output)).toBe(0);
    expect(readFileSync(explicit, "utf8")).toMatch(/^# teasers — run r-20250301-0200-ab12\n/);
    // The same report but for the second it was generated in.
    const generatedLine = /^- report generated .*$/m;
    expect(readFileSync(inferred, "utf8").replace(generatedLine, "")).toBe(
      readFileSync(explicit, "utf8").replace(generatedLine, ""),
    );
  });

  it("writes the report itself to stdout with --out -", async () => {
    const seeded = seedReportRun();
    const output = capture();
    expect(
      await runCli(["report", "--format", "json", "--out", "-", "--state", seeded.statePath], output),
    ).toBe(0);
    const report = JSON.parse(output.out) as { run: { id: string }; jobs: unknown[] };
    expect(report.run.id).toBe(RUN_ID);
    expect(report.jobs).toHaveLength(4);
    expect(existsSync(path.join(seeded.root, "reports"))).toBe(false);
  });

  it("checks each output's sha256, or with --no-verify only its size", async () => {
    const seeded = seedReportRun();
    const replaced = path.join(seeded.root, "outputs", "teasers", "001", "restyle.mp4");
    const bytes = readFileSync(replaced);
    bytes.fill(0x20, bytes.length - 8); // same size, other content
    writeFileSync(replaced, bytes);
    const outputOf = async (...extra: string[]) => {
      const output = capture();
      const args = ["report", "--format", "json", "--out", "-", "--state", seeded.statePath, ...extra];
      expect(await runCli(args, output)).toBe(0);
      const report = JSON.parse(output.out) as RunReport;
      return report.jobs[0]!.steps[1]!.outputs[0]!;
    };
    expect(await outputOf()).toMatchObject({ changed: true, local: false });
    expect(await outputOf("--no-verify")).toMatchObject({ changed: false, local: true });
  });

  it("prints one JSON document naming the report with --json", async () => {
    const seeded = seedReportRun();
    const output = capture();
    expect(await runCli(["--json", "report", "--state", seeded.statePath], output)).toBe(0);
    expect(JSON.parse(output.out)).toEqual({
      run: RUN_ID,
      format: "html",
      path: path.join(seeded.root, "reports", `${RUN_ID}.html`),
    });
  });

  it("refuses a run the state does not hold, exiting 2 and pointing at `runflow runs`", async () => {
    const seeded = seedReportRun();
    const output = capture();
    expect(await runCli(["report", "r-nope", "--state", seeded.statePath], output)).toBe(ExitCode.invalid);
    expect(output.err).toContain(`error: no run r-nope in ${seeded.statePath}`);
    expect(output.err).toContain("runflow runs");
  });

  it("refuses a format it does not know", async () => {
    const seeded = seedReportRun();
    const output = capture();
    expect(await runCli(["report", "--format", "pdf", "--state", seeded.statePath], output)).toBe(
      ExitCode.invalid,
    );
    expect(output.err).toMatch(
      /--format <format>' argument 'pdf' is invalid\. Allowed choices are html, md, json/,
    );
  });

  it("says nothing has run yet when there is no state database", async () => {
    const output = capture();
    const missing = path.join(tempRoot(), "state", "runflow.db");
    expect(await runCli(["report", "--state", missing], output)).toBe(ExitCode.invalid);
    expect(output.err).toContain("nothing has run yet");
  });

  it("never writes the API token, even one an older database holds", async () => {
    const token = "rc_live_5f3b9a7e2d1c4b8a9e0f";
    const seeded = seedReportRun({ plantInError: token });
    for (const format of ["html", "md", "json"] as const) {
      const written = await runReportCommand(
        RUN_ID,
        { statePath: seeded.statePath, format, env: { RUNCOMFY_API_TOKEN: token }, quiet: true },
        capture(),
      );
      const text = readFileSync(written.path ?? "", "utf8");
      expect(text).not.toContain(token);
      expect(text).toContain("(token [redacted])");
    }
  });
});
