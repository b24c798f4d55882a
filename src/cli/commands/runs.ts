/** `runflow runs` (SPEC §2): the history of runs, newest first. */
import type { Command } from "commander";
import { shortOrigin } from "../../api/origin.js";
import { UsageError } from "../../errors.js";
import { openStateStore } from "../../app/open-store.js";
import { resolveStateLocation } from "../../store/location.js";
import { formatTable } from "../../render/table.js";
import { countsPhrase } from "../../render/vocabulary.js";
import { costToJson, formatCost } from "../../cost/money.js";
import { formatDuration } from "../../util/duration.js";
import { commandOutput, globalOptions } from "../context.js";
import { runJson, shownStatus } from "../run-liveness.js";

/** `2026-11-23 01:30` in the machine's time zone: what a person compares with their crontab. */
function localTime(at: number): string {
  const date = new Date(at);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .option("--limit <n>", "at most this many runs", "20")
    .option("--workflow <name>", "only the runs of this workflow")
    .action(async function (this: Command, flags: { limit: string; workflow?: string }) {
      const globals = globalOptions(this);
      const output = commandOutput(this);
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        throw new UsageError(`Expected \`--limit\` to be an integer ≥ 1, got \`${flags.limit}\``);
      }
      const store = await openStateStore(resolveStateLocation(process.cwd(), globals.state), {
        readonly: true,
      });
      try {
        const runs = await store.runs.list({ limit, workflowName: flags.workflow });
        const costs = new Map(
          await Promise.all(runs.map(async (run) => [run.id, await store.history.runCost(run.id)] as const)),
        );
        if (globals.json) {
          const withCost = runs.map((run) => ({ ...runJson(run), cost: costToJson(costs.get(run.id)!) }));
          output.stdout(JSON.stringify(withCost, null, 2));
          return;
        }
        if (runs.length === 0) {
          output.stdout("no runs yet");
          return;
        }
        const rows = runs.map((run) => [
          run.id,
          run.kind,
          run.workflowName,
          shortOrigin(run.apiOrigin),
          shownStatus(run),
          localTime(run.startedAt),
          run.finishedAt === undefined ? "" : formatDuration(run.finishedAt - run.startedAt),
          formatCost(costs.get(run.id)),
          run.counts === undefined ? "" : countsPhrase(run.counts),
        ]);
        output.stdout(
          formatTable(["RUN", "KIND", "WORKFLOW", "API", "STATUS", "STARTED", "TOOK", "COST", "STEPS"], rows),
        );
      } finally {
        await store.close();
      }
    });
}
