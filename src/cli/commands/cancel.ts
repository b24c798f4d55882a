/**
 * `runflow cancel [run]` (SPEC §2): stop a run. A live apply of it stops submitting and
 * cancels its queued requests; with no live process, its queued requests are cancelled here.
 */
import type { Command } from "commander";
import { cancelRun } from "../../app/index.js";
import { commandOutput, globalOptions } from "../context.js";

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .argument("[run]", "the run id (default: the latest run)")
    .option(
      "--emulator",
      "the run was on the local, in-process emulator of `apply --emulator`: no token needed",
    )
    .action(async function (this: Command, run: string | undefined, flags: { emulator?: boolean }) {
      const globals = globalOptions(this);
      const output = commandOutput(this);
      const outcome = await cancelRun({ run, statePath: globals.state, emulator: flags.emulator });
      if (globals.json) {
        output.stdout(JSON.stringify(outcome, null, 2));
        return;
      }
      if (outcome.alreadyFinished) {
        output.stdout(
          `run ${outcome.runId} already finished (${outcome.finalStatus ?? "unknown"}): nothing to cancel`,
        );
        return;
      }
      if (outcome.live) {
        output.stdout(
          outcome.finalStatus === undefined
            ? `run ${outcome.runId}: asked its live apply to stop; it is cancelling its queued requests`
            : `run ${outcome.runId}: its live apply stopped (${outcome.finalStatus})`,
        );
        return;
      }
      const count = outcome.cancelled.length;
      const lines = [
        outcome.emulatorGone
          ? `run ${outcome.runId} cancelled: ${count} open step${count === 1 ? "" : "s"} marked cancelled (the embedded emulator that ran them ended with its apply)`
          : `run ${outcome.runId} cancelled: ${count} queued request${count === 1 ? "" : "s"} cancelled`,
      ];
      if (outcome.running.length > 0) {
        lines.push(
          `${outcome.running.length} already running (the API cannot cancel them): kept for the next apply to collect`,
        );
      }
      for (const { address, error } of outcome.errors) lines.push(`  ${address}: ${error}`);
      output.stdout(lines.join("\n"));
    });
}
