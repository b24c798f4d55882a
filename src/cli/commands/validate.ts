/**
 * `runflow validate <file>`: every problem of a workflow, located, without submitting
 * anything (SPEC §2). `--preflight` also probes each static media URL once.
 */
import type { Command } from "commander";
import { ExitCode, RunflowError, type Diagnostic } from "../../errors.js";
import { loadModelRegistry } from "../../models/registry.js";
import { checkWorkflow, type Workflow } from "../../workflow/index.js";
import { parseVarOverrides } from "../../workflow/var-overrides.js";
import { countOf, scopePhrase } from "../../render/vocabulary.js";
import { collectRepeatable, commandOutput, globalOptions, type Output } from "../context.js";

// Kept for modules that imported them from here before they moved to ../context.js.
export { collectRepeatable, commandOutput };

export interface ValidateCommandOptions {
  preflight?: boolean;
  /** `--var NAME=VALUE`, as given. */
  var?: string[];
  json?: boolean;
  /** Extra model schema folders (`--models`). */
  models?: string[];
  env?: NodeJS.ProcessEnv;
  /** Injected for tests of `--preflight`. */
  fetch?: typeof fetch;
}

/** A diagnostic as `--json` writes it: every key present. */
export interface DiagnosticJson {
  file: string;
  line: number | null;
  column: number | null;
  message: string;
  path: string | null;
  hint: string | null;
}

export function diagnosticToJson(diagnostic: Diagnostic, workflowFile: string): DiagnosticJson {
  return {
    file: diagnostic.location?.file ?? workflowFile,
    line: diagnostic.location?.line ?? null,
    column: diagnostic.location?.column ?? null,
    message: diagnostic.message,
    path: diagnostic.path ?? null,
    hint: diagnostic.hint ?? null,
  };
}

/** `file:line:col: message`, and the hint on the next line. */
export function diagnosticLines(diagnostic: Diagnostic, workflowFile: string): string {
  const { location } = diagnostic;
  const where = location ? `${location.file}:${location.line}:${location.column}` : workflowFile;
  const head = `${where}: ${diagnostic.message}`;
  return diagnostic.hint ? `${head}\n  hint: ${diagnostic.hint}` : head;
}

/** Thrown after the diagnostics were printed: exit 2 with a one-line summary. */
export class WorkflowRejectedError extends RunflowError {
  constructor(file: string, count: number) {
    super(
      "workflow_invalid",
      ExitCode.invalid,
      `${file}: ${count} problem${count === 1 ? "" : "s"} found; nothing was submitted`,
    );
  }
}

export function workflowCounts(workflow: Workflow): { jobs: number; instances: number; steps: number } {
  let instances = 0;
  let steps = 0;
  for (const job of workflow.jobs) {
    instances += job.instances.length;
    steps += job.instances.length * job.steps.length;
  }
  return { jobs: workflow.jobs.length, instances, steps };
}

/** Runs `validate` and writes its report; throws WorkflowRejectedError (exit 2) when the file is invalid. */
export async function runValidateCommand(
  file: string,
  options: ValidateCommandOptions,
  output: Output,
): Promise<void> {
  const vars = parseVarOverrides(options.var);
  const registry = loadModelRegistry({ dirs: options.models ?? [] });
  const check = await checkWorkflow(file, {
    registry,
    vars,
    env: options.env ?? process.env,
    collectMedia: options.preflight === true,
  });
  let diagnostics = check.diagnostics;
  if (check.workflow && options.preflight) {
    // The same probes as apply's, retried on a media host's 429, 5xx or dropped connection.
    // Loaded only here: a validate without --preflight never loads the HTTP client.
    const { preflightMedia } = await import("../../engine/preflight.js");
    const { retryingTransport } = await import("../../api/probe-transport.js");
    diagnostics = await preflightMedia(check.media, registry, {
      transport: retryingTransport({ fetch: options.fetch }),
    });
  }

  if (options.json) {
    const report = {
      ok: diagnostics.length === 0,
      diagnostics: diagnostics.map((d) => diagnosticToJson(d, file)),
      ...(check.workflow && diagnostics.length === 0 ? { counts: workflowCounts(check.workflow) } : {}),
      ...(options.preflight ? { mediaChecked: check.media.length } : {}),
    };
    output.stdout(`${JSON.stringify(report, null, 2)}\n`);
  } else if (diagnostics.length > 0) {
    for (const diagnostic of diagnostics) output.stderr(`${diagnosticLines(diagnostic, file)}\n`);
  }
  if (diagnostics.length > 0 || !check.workflow) throw new WorkflowRejectedError(file, diagnostics.length);

  if (!options.json) {
    const counts = workflowCounts(check.workflow);
    const media = options.preflight ? `; ${countOf(check.media.length, "media URL")} probed` : "";
    output.stdout(`${file}: OK — ${scopePhrase(counts)}${media}\n`);
  }
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .argument("<file>", "the workflow YAML file")
    .option(
      "--preflight",
      "also probe every input media URL (reachable, size, pixel dimensions, aspect ratio)",
    )
    .option("--var <name=value>", "override a var of the workflow (repeatable)", collectRepeatable)
    .action(async function (this: Command, file: string, local: { preflight?: boolean; var?: string[] }) {
      const globals = globalOptions(this);
      await runValidateCommand(
        file,
        { preflight: local.preflight, var: local.var, json: globals.json, models: globals.models },
        commandOutput(this),
      );
    });
}
