/**
 * `runflow apply <file>` (SPEC §2): validate, plan and run a workflow to completion; resume
 * what an earlier apply left unfinished; reuse what already succeeded. Progress goes to
 * stdout as plain lines (or NDJSON with --json), then the summary. What only `--dry-run` or
 * `--emulator` uses is imported when asked for (docs/decisions.md "Start-up").
 */
import { Option, type Command } from "commander";
import type { RunningEmulator } from "../../emulator/index.js";
import { applyWorkflow } from "../../app/index.js";
import { EventBus } from "../../engine/events.js";
import { RunControl } from "../../engine/run-control.js";
import { parseVarOverrides } from "../../workflow/var-overrides.js";
import {
  collectRepeatable,
  commandOutput,
  environmentWithQueue,
  globalOptions,
  type GlobalOptions,
  type Output,
  QUEUE_OPTION,
} from "../context.js";
import { queueArgument, shellWord, stateArgument } from "../printed-commands.js";
import { parseConcurrency, parseMaxCost, printSummary, runWithViews, subscribeViews } from "../run-views.js";
import type { ApiTarget } from "../../engine/apply.js";

interface ApplyFlags {
  concurrency?: string;
  fresh?: boolean;
  dryRun?: boolean;
  var?: string[];
  only?: string[];
  download?: boolean;
  emulator?: boolean;
  wait?: boolean;
  maxCost?: string;
  queue?: string;
}

/** `--dry-run`: exactly `runflow plan` with the same options. */
async function dryRun(
  file: string,
  flags: ApplyFlags,
  globals: GlobalOptions,
  output: Output,
): Promise<void> {
  const { runPlanCommand } = await import("./plan.js");
  await runPlanCommand(
    file,
    {
      var: flags.var,
      only: flags.only,
      fresh: flags.fresh,
      emulator: flags.emulator,
      json: globals.json,
      models: globals.models,
      state: globals.state,
    },
    output,
  );
}

export async function runApplyCommand(
  file: string,
  flags: ApplyFlags,
  globals: GlobalOptions,
  output: Output,
): Promise<number> {
  if (flags.dryRun) {
    await dryRun(file, flags, globals, output);
    return 0;
  }
  const vars = parseVarOverrides(flags.var);
  const concurrency = parseConcurrency(flags.concurrency);
  const maxCostMicros = parseMaxCost(flags.maxCost);
  const env = environmentWithQueue(flags.queue, globals);
  let emulator: RunningEmulator | undefined;
  let emulatorApi: ApiTarget | undefined;
  // The emulator's own media host var, left out of the printed resume command.
  let mediaHostVar: string | undefined;
  if (flags.emulator) {
    const { embeddedApi, embeddedNote, startEmbeddedEmulator } = await import("../embedded-emulator.js");
    const { declaresVar, MEDIA_HOST_VAR } = await import("../emulator-media-host.js");
    emulator = await startEmbeddedEmulator();
    emulatorApi = embeddedApi(emulator);
    mediaHostVar = MEDIA_HOST_VAR;
    const notes = [embeddedNote(emulator)];
    if (!Object.hasOwn(vars, MEDIA_HOST_VAR) && declaresVar(file, MEDIA_HOST_VAR)) {
      vars[MEDIA_HOST_VAR] = emulator.url;
      notes.push(`vars.${MEDIA_HOST_VAR} = ${emulator.url} (the emulator serves test images under /media)`);
    }
    if (!globals.quiet) for (const note of notes) output.stderr(note);
  }
  const events = new EventBus();
  const views = await subscribeViews(events, globals, output);
  const control = new RunControl();
  try {
    const outcome = await runWithViews(views, control, output, () =>
      applyWorkflow(
        {
          file,
          statePath: globals.state,
          vars,
          only: flags.only,
          fresh: flags.fresh,
          concurrency,
          download: flags.download,
          wait: flags.wait,
          maxCostMicros,
          models: globals.models,
          api: emulatorApi,
          env,
        },
        { events, control },
      ),
    );
    const resume = [
      `runflow apply ${shellWord(file)}`,
      stateArgument(globals).trim(),
      queueArgument(flags.queue).trim(),
      flags.emulator ? "--emulator" : "",
    ];
    for (const [name, value] of Object.entries(vars)) {
      if (!(emulator && name === mediaHostVar && value === emulator.url))
        resume.push(`--var ${shellWord(`${name}=${value}`)}`);
    }
    for (const only of flags.only ?? []) resume.push(`--only ${shellWord(only)}`);
    printSummary(views.summary, outcome, globals, output, {
      resumeCommand: resume.filter((part) => part !== "").join(" "),
      downloads: flags.download !== false,
      emulator: flags.emulator === true,
      queue: flags.queue,
    });
    return outcome.exitCode;
  } finally {
    await emulator?.close();
  }
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .argument("<file>", "the workflow YAML file")
    .option("--concurrency <n>", "requests in flight at once (overrides the file)")
    .option("--fresh", "reuse nothing from earlier runs")
    .option("--dry-run", "print what apply would do and submit nothing (same as `runflow plan`)")
    .option("--var <name=value>", "override a var of the workflow (repeatable)", collectRepeatable)
    .option(
      "--only <job[/step]>",
      "only this job or step, and what it depends on (repeatable)",
      collectRepeatable,
    )
    .addOption(new Option("--no-download", "record output URLs without downloading the files"))
    .option(
      "--emulator",
      "run against a local, in-process emulator of the API: no token needed, nothing billed",
    )
    .option("--wait", "wait for a live apply of the same workflow to finish instead of exiting 3")
    .option(...QUEUE_OPTION)
    .option(
      "--max-cost <usd>",
      "spend at most this many USD in this apply: steps that would go past it are held back, not submitted, and the apply exits 1 (overrides the workflow's budget.max_cost)",
    )
    .action(async function (this: Command, file: string, flags: ApplyFlags) {
      process.exitCode = await runApplyCommand(file, flags, globalOptions(this), commandOutput(this));
    });
}
