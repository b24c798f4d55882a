/**
 * `runflow worker` (SPEC §10): a long-running process that executes steps of any run kept in
 * a PostgreSQL state — model steps (submit, poll, collect, download) and run steps — until
 * SIGINT or SIGTERM, which hand its unfinished steps back to the queue at once (exit 130).
 * It prints one line per step it finished or handed back.
 */
import type { Command } from "commander";
import { ExitCode, UsageError } from "../../errors.js";
import { describePostgresLocation } from "../../store/location.js";
import { commandOutput, globalOptions, QUEUE_OPTION } from "../context.js";

interface WorkerFlags {
  queue?: string;
  concurrency?: string;
  processes?: string;
  name?: string;
}

function positive(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new UsageError(`${flag} must be a whole number of at least 1, not ${JSON.stringify(value)}`);
  return parsed;
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .option(...QUEUE_OPTION)
    .option("--concurrency <n>", "model steps this worker executes at once (default 16)")
    .option("--processes <n>", "run steps (local programs) at once (default: the CPUs)")
    .option("--name <name>", "this worker's name, shown in status (default: HOST-PID)")
    .action(async function (this: Command, flags: WorkerFlags) {
      const globals = globalOptions(this);
      const output = commandOutput(this);
      const concurrency = positive("--concurrency", flags.concurrency) ?? 16;
      const processConcurrency = positive("--processes", flags.processes);
      const { startWorker } = await import("../../app/worker.js");
      const { defaultWorkerName } = await import("../../cluster/index.js");
      const name = flags.name ?? defaultWorkerName();
      const queue = flags.queue ?? (process.env.RUNFLOW_QUEUE?.trim() || undefined);
      const worker = await startWorker({
        state: globals.state,
        queue,
        name,
        concurrency,
        processConcurrency,
        models: globals.models,
        cwd: process.cwd(),
        env: process.env,
        events: {
          emit: (event) => {
            if (event.event === "notice" && event.level === "warn")
              output.stderr(`${name}: ${event.message}`);
          },
        },
        onStep: (job, outcome) => {
          if (!globals.quiet) output.stdout(`${name}: ${job.runId} ${job.address} ${outcome}`);
        },
      });
      const queues = queue === undefined ? "" : `, queues at ${worker.queues}`;
      output.stdout(
        `worker ${name} taking steps from ${describePostgresLocation(globals.state)}${queues} (concurrency ${concurrency}); Ctrl-C hands its steps back`,
      );
      // The listeners stay until the process exits (`on`, not `once`): execa's clean-up
      // (signal-exit) re-raises a signal no other listener hears, which killed a worker that
      // ran a local program in the middle of handing its steps back. A second signal exits
      // at once, as apply's does (SPEC §5).
      const stopped = new Promise<NodeJS.Signals>((resolve) => {
        let received = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          if (++received === 1) resolve(signal);
          else process.exit(ExitCode.interrupted);
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      });
      const signal = await stopped;
      output.stdout(`${name}: ${signal}: handing unfinished steps back`);
      await worker.stop();
      output.stdout(`${name}: stopped`);
      process.exitCode = ExitCode.interrupted;
    });
}
