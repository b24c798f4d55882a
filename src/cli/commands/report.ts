/**
 * `runflow report [run]`: writes a report of a run (SPEC §2, §6) — a self-contained HTML
 * gallery (default), Markdown or JSON — and prints where it went.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Option, type Command } from "commander";
import {
  buildRunReport,
  checkRecordedFile,
  defaultReportPath,
  formatFromFileName,
  makeThumbnails,
  renderReportHtml,
  renderReportJson,
  renderReportMarkdown,
  REPORT_FORMATS,
  type FfmpegRunner,
  type ReportFormat,
  type RunReport,
  type ThumbnailSummary,
} from "../../report/index.js";
import { findRun } from "../../engine/find-run.js";
import { openStateStore } from "../../app/open-store.js";
import { resolveStateLocation } from "../../store/location.js";
import { makeRedactor, tokensFromEnvironment } from "../../store/redact.js";
import { commandOutput, globalOptions, processOutput, type Output } from "../context.js";
import { displayPath, stateArgument } from "../printed-commands.js";

export interface ReportCommandOptions {
  /** The state database (`--state`). */
  statePath: string;
  /** Default: from the `out` file's extension, else html. */
  format?: ReportFormat | undefined;
  /** The file to write; `-` writes to stdout. Default: defaultReportPath. */
  out?: string | undefined;
  /** Print one JSON document saying what was written. */
  json?: boolean | undefined;
  quiet?: boolean | undefined;
  /** Where the API token may be (it is scrubbed from the report even if the database held it). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Now, in ms since the epoch (default: the clock). */
  now?: number | undefined;
  /** Resolves relative paths (default: process.cwd()). */
  cwd?: string | undefined;
  /** The command that re-runs the failed steps, shown in the report (default `runflow retry RUN`). */
  retryCommand?: ((runId: string) => string) | undefined;
  /** HTML: the ffmpeg that makes thumbnails (default `ffmpeg` on PATH); false makes none. */
  ffmpeg?: string | false | undefined;
  /** HTML: how ffmpeg is started (tests count the thumbnails made). */
  ffmpegRunner?: FfmpegRunner | undefined;
  /** `--no-verify`: compare each file's size only, not its sha256 (which reads every file). */
  verify?: boolean | undefined;
}

export interface WrittenReport {
  runId: string;
  format: ReportFormat;
  /** Absolute path of the report; undefined when it went to stdout. */
  path: string | undefined;
  report: RunReport;
  /** HTML: the thumbnails made now and taken from the cache. */
  thumbnails?: ThumbnailSummary;
}

/** Written to a temporary file and renamed: a reader never sees half a report. */
function writeAtomically(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}

export async function runReportCommand(
  runId: string | undefined,
  options: ReportCommandOptions,
  output: Output = processOutput,
): Promise<WrittenReport> {
  const cwd = options.cwd ?? process.cwd();
  const format = options.format ?? (options.out ? formatFromFileName(options.out) : undefined) ?? "html";
  const toStdout = options.out === "-";
  const statePath = resolveStateLocation(cwd, options.statePath);
  const store = await openStateStore(statePath, { readonly: true });
  let report: RunReport;
  let file: string | undefined;
  try {
    const run = await findRun(store, runId, statePath);
    file = toStdout
      ? undefined
      : path.resolve(cwd, options.out ?? defaultReportPath(statePath, run.id, format));
    const steps = await store.steps.list(run.id);
    // A reused step's inputs were captured by the run it came from.
    const capturingRuns = [run.id, ...steps.flatMap((step) => step.reusedFromRun ?? [])];
    report = buildRunReport(run, steps, await store.outputs.list(run.id), {
      captures: await store.outputs.inputCaptures(capturingRuns),
      reportDir: file ? path.dirname(file) : cwd,
      now: options.now ?? Date.now(),
      attempts: await store.attempts.list(run.id),
      retryCommand: options.retryCommand?.(run.id),
      checkFile:
        options.verify === false
          ? (file, recorded) => checkRecordedFile(file, { bytes: recorded.bytes, sha256: undefined })
          : checkRecordedFile,
      costs: await store.history.stepCosts(run.id),
    });
  } finally {
    await store.close();
  }
  // The database never holds the token (the store redacts on write); scrubbing again costs
  // nothing and covers a database written before the token was set or changed.
  const redact = makeRedactor(tokensFromEnvironment(options.env ?? process.env));
  let rendered: string;
  let thumbnails: ThumbnailSummary | undefined;
  if (format === "html") {
    // Thumbnails live beside the report, so their links are relative to its folder.
    const made = await makeThumbnails(report, {
      reportDir: file ? path.dirname(file) : cwd,
      ffmpeg: options.ffmpeg,
      runner: options.ffmpegRunner,
    });
    thumbnails = made.summary;
    rendered = renderReportHtml(report, { previews: made.previews });
  } else {
    rendered = format === "md" ? renderReportMarkdown(report) : renderReportJson(report);
  }
  const text = redact(rendered);

  if (file === undefined) {
    output.stdout(text);
  } else {
    writeAtomically(file, text);
    if (options.json) {
      output.stdout(`${JSON.stringify({ run: report.run.id, format, path: file })}\n`);
    } else if (!options.quiet) {
      output.stdout(`report of run ${report.run.id} written to ${displayPath(file, cwd)}\n`);
    }
  }
  if (thumbnails?.ffmpegAbsent && !options.quiet) {
    output.stderr(
      "note: ffmpeg was not found, so the videos have no poster frame in the report (a tile with the file name stands in); install ffmpeg for thumbnails\n",
    );
  }
  return { runId: report.run.id, format, path: file, report, ...(thumbnails ? { thumbnails } : {}) };
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .argument("[run]", "the run id (default: the latest run)")
    .addOption(
      new Option(
        "--format <format>",
        "html, md or json (default: from --out's extension, else html)",
      ).choices(REPORT_FORMATS),
    )
    .option("--out <file>", "where to write it; - for stdout (default: reports/RUN.FORMAT beside the state)")
    .option("--no-verify", "check only that each output file has its recorded size, not its sha256 (faster)")
    .action(async function (
      this: Command,
      runId: string | undefined,
      local: { format?: ReportFormat; out?: string; verify: boolean },
    ) {
      const globals = globalOptions(this);
      await runReportCommand(
        runId,
        {
          statePath: globals.state,
          format: local.format,
          out: local.out,
          json: globals.json,
          quiet: globals.quiet,
          verify: local.verify,
          retryCommand: (id) => `runflow retry ${id}${stateArgument(globals)}`,
        },
        commandOutput(this),
      );
    });
}
