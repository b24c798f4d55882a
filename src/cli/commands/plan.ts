/**
 * `runflow plan <file>`: the expanded jobs and steps, which would be reused and which
 * submitted, and the exact request bodies (SPEC §2). Prints the very Plan `apply` executes.
 */
import type { Command } from "commander";
import { loadModelRegistry } from "../../models/registry.js";
import {
  emptyPriorState,
  planRun,
  planSummaryLines,
  planToJson,
  type Plan,
  type PriorState,
} from "../../plan/index.js";
import { checkWorkflow } from "../../workflow/index.js";
import { parseVarOverrides } from "../../workflow/var-overrides.js";
import { collectRepeatable, commandOutput, globalOptions, processOutput, type Output } from "../context.js";
import { diagnosticLines, diagnosticToJson, WorkflowRejectedError } from "./validate.js";

export interface PlanCommandOptions {
  /** `--var NAME=VALUE`, as given. */
  var?: string[];
  /** `--only JOB[/STEP]`, as given. */
  only?: string[];
  fresh?: boolean;
  json?: boolean;
  /** Extra model schema folders (`--models`). */
  models?: string[];
  env?: NodeJS.ProcessEnv;
  /** The run id templates see as `run.id` (default: `plan-` and the time). */
  runId?: string;
  /** Now, in ms since the epoch (default: the clock). */
  now?: number;
}

/**
 * Loads, plans and prints. `prior` is what earlier runs left (the state store), or
 * emptyPriorState. Throws WorkflowRejectedError (exit 2) after printing the diagnostics
 * when the workflow is invalid.
 */
export async function runPlanCommand(
  file: string,
  options: PlanCommandOptions,
  prior: PriorState,
  output: Output = processOutput,
): Promise<Plan> {
  const vars = parseVarOverrides(options.var);
  const registry = loadModelRegistry({ dirs: options.models ?? [] });
  const check = await checkWorkflow(file, { registry, vars, env: options.env ?? process.env });
  if (!check.workflow) {
    if (options.json) {
      const report = { ok: false, diagnostics: check.diagnostics.map((d) => diagnosticToJson(d, file)) };
      output.stdout(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      for (const diagnostic of check.diagnostics) output.stderr(`${diagnosticLines(diagnostic, file)}\n`);
    }
    throw new WorkflowRejectedError(file, check.diagnostics.length);
  }
  const now = options.now ?? Date.now();
  const plan = planRun(check.workflow, prior, {
    runId: options.runId ?? `plan-${new Date(now).toISOString().replace(/[-:]/g, "").slice(0, 15)}`,
    now,
    fresh: options.fresh === true,
    only: options.only ?? [],
  });
  output.stdout(options.json ? `${planToJson(plan)}\n` : `${planSummaryLines(plan).join("\n")}\n`);
  return plan;
}

export function register(program: Command): void {
  program
    .command("plan")
    .description(
      "print the expanded jobs and steps, which would be reused and which submitted, and the request bodies",
    )
    .argument("<file>", "the workflow YAML file")
    .option("--var <name=value>", "override a var of the workflow (repeatable)", collectRepeatable)
    .option(
      "--only <job[/step]>",
      "only this job or step, and what it depends on (repeatable)",
      collectRepeatable,
    )
    .option("--fresh", "reuse nothing from earlier runs")
    .action(async function (
      this: Command,
      file: string,
      local: { var?: string[]; only?: string[]; fresh?: boolean },
    ) {
      const globals = globalOptions(this);
      await runPlanCommand(
        file,
        { var: local.var, only: local.only, fresh: local.fresh, json: globals.json, models: globals.models },
        // The state store is wired here once it exists; until then nothing is reused.
        emptyPriorState,
        commandOutput(this),
      );
    });
}
