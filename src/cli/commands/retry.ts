/**
 * `runflow retry [run]` (SPEC §2): re-run the failed, timed-out, cancelled and blocked steps
 * of a run (default: the latest) and the steps that depend on them, from the plan stored
 * with the run. `--step` narrows; `unknown` steps only with `--resubmit-unknown`.
 */
import type { Command } from "commander";
import type { RunningEmulator } from "../../emulator/index.js";
import { EventBus } from "../../engine/events.js";
import { retryRun } from "../../app/index.js";
import { RunControl } from "../../engine/run-control.js";
import {
  collectRepeatable,
  commandOutput,
  environmentWithQueue,
  globalOptions,
  QUEUE_OPTION,
} from "../context.js";
import { embeddedApi, embeddedNote, startEmbeddedEmulator } from "../embedded-emulator.js";
import { retryCommand } from "../printed-commands.js";
import { parseConcurrency, parseMaxCost, printSummary, runWithViews, subscribeViews } from "../run-views.js";

interface RetryFlags {
  step?: string[];
  resubmitUnknown?: boolean;
  concurrency?: string;
  wait?: boolean;
  emulator?: boolean;
  queue?: string;
  maxCost?: string;
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .argument("[run]", "the run id (default: the latest run)")
    .option(
      "--step <id>",
      "only this step: JOB/KEY/STEP, JOB/KEY, JOB or a step id (repeatable)",
      collectRepeatable,
    )
    .option(
      "--resubmit-unknown",
      "also submit `unknown` steps again (their first submission may have been billed)",
    )
    .option("--concurrency <n>", "requests in flight at once (overrides the workflow)")
    .option("--wait", "wait for a live apply of the same workflow to finish instead of exiting 3")
    .option(...QUEUE_OPTION)
    .option(
      "--emulator",
      "run against a local, in-process emulator of the API (as `apply --emulator`): no token needed",
    )
    .option(
      "--max-cost <usd>",
      "spend at most this many USD in this retry (default: the budget of the run retried, if it had one): steps that would go past it are held back, not submitted, and the retry exits 1",
    )
    .action(async function (this: Command, run: string | undefined, flags: RetryFlags) {
      const globals = globalOptions(this);
      const output = commandOutput(this);
      const concurrency = parseConcurrency(flags.concurrency);
      const maxCostMicros = parseMaxCost(flags.maxCost);
      const env = environmentWithQueue(flags.queue, globals);
      let emulator: RunningEmulator | undefined;
      try {
        if (flags.emulator) {
          emulator = await startEmbeddedEmulator();
          if (!globals.quiet) output.stderr(embeddedNote(emulator));
        }
        const events = new EventBus();
        const views = await subscribeViews(events, globals, output);
        const control = new RunControl();
        const outcome = await runWithViews(views, control, output, () =>
          retryRun(
            {
              run,
              steps: flags.step,
              resubmitUnknown: flags.resubmitUnknown,
              concurrency,
              wait: flags.wait,
              statePath: globals.state,
              models: globals.models,
              api: emulator ? embeddedApi(emulator) : undefined,
              env,
              maxCostMicros,
            },
            { events, control },
          ),
        );
        if (outcome.nothingToRetry) {
          const message = `run ${outcome.parentRunId} has nothing to retry${flags.step ? " among the steps named" : ""}`;
          if (globals.json)
            output.stdout(JSON.stringify({ event: "nothing_to_retry", runId: outcome.parentRunId }));
          else output.stdout(message);
          process.exitCode = 0;
          return;
        }
        printSummary(views.summary, outcome, globals, output, {
          resumeCommand: retryCommand(outcome.parentRunId, globals, {
            emulator: emulator !== undefined,
            queue: flags.queue,
          }),
          downloads: true,
          emulator: emulator !== undefined,
          queue: flags.queue,
        });
        process.exitCode = outcome.exitCode;
      } finally {
        await emulator?.close();
      }
    });
}
