/** `runflow runs` (SPEC §2): the history of runs, newest first. */
import path from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { openSqliteStore } from "../../store/sqlite.js";
import { formatDuration } from "../../util/duration.js";
import { commandOutput, globalOptions } from "../context.js";

export function register(program: Command): void {
  program
    .command("runs")
    .description("history of runs, newest first")
    .option("--limit <n>", "at most this many runs", "20")
    .option("--workflow <name>", "only the runs of this workflow")
    .action(function (this: Command, flags: { limit: string; workflow?: string }) {
      const globals = globalOptions(this);
      const output = commandOutput(this);
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        throw new UsageError(`Expected \`--limit\` to be an integer ≥ 1, got \`${flags.limit}\``);
      }
      const store = openSqliteStore(path.resolve(globals.state), { readonly: true });
      try {
        const runs = store.listRuns({ limit, workflowName: flags.workflow });
        if (globals.json) {
          output.stdout(JSON.stringify(runs, null, 2));
          return;
        }
        if (runs.length === 0) {
          output.stdout("no runs yet");
          return;
        }
        const lines = runs.map((run) => {
          const took =
            run.finishedAt === undefined ? "" : ` ${formatDuration(run.finishedAt - run.startedAt)}`;
          const counts = Object.entries(run.counts ?? {})
            .map(([state, count]) => `${count} ${state}`)
            .join(", ");
          return `${run.id}  ${run.kind.padEnd(5)}  ${run.workflowName}  ${run.status}${took}${counts ? `  (${counts})` : ""}`;
        });
        output.stdout(lines.join("\n"));
      } finally {
        store.close();
      }
    });
}
