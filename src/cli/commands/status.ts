/**
 * `runflow status [run]` (SPEC §2): the state of a run (default: the latest) — counts per
 * state, each step that did not succeed with its error, and where the outputs are: each in
 * the run's own folder (`.runs/RUN/`), with the run that made it when a reused step took it over.
 */
import type { Command } from "commander";
import { describeOrigin, isEmulatorOrigin } from "../../api/origin.js";
import { findRun } from "../../engine/find-run.js";
import { openStateStore } from "../../app/open-store.js";
import { WORKER_DEAD_AFTER_MS } from "../../store/types.js";
import { resolveStateLocation } from "../../store/location.js";
import type { RunRecord, StepRecord } from "../../store/types.js";
import { stateLabel, stepCountsLine } from "../../render/vocabulary.js";
import { costToJson, formatCost, formatUsd, usdOf } from "../../cost/money.js";
import { formatDuration } from "../../util/duration.js";
import { commandOutput, globalOptions } from "../context.js";
import { runJson, shownStatus } from "../run-liveness.js";
import { displayPath, retryCommand } from "../printed-commands.js";

/** Steps and outputs listed in full up to this many; `--json` has them all. */
const LISTED = 50;

const PROBLEM_STATES = ["failed", "timed_out", "cancelled", "unknown", "blocked", "held"] as const;

export interface RunStatusReport {
  run: RunRecord;
  counts: Record<string, number>;
  problems: Pick<StepRecord, "address" | "state" | "error" | "requestId">[];
  outputs: {
    address: string;
    name: string;
    index: number | undefined;
    path: string | undefined;
    url: string;
    bytes: number | undefined;
    sha256: string | undefined;
    /** The run whose step made the file: this run, or the earlier one a reused step took it over from. */
    producedBy: string;
  }[];
  /** What the run's attempts cost (SPEC §9): USD reported (null when none was), and billed attempts without a cost. */
  cost: { usd: number | null; unknown: number };
  /** The same per step that was billed, in plan order. */
  stepCosts: { address: string; usd: number | null; unknown: number }[];
  /** The apply's `--max-cost` (or `budget.max_cost`) in USD, when it had one. */
  maxCostUsd: number | undefined;
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command.argument("[run]", "the run id (default: the latest run)").action(async function (
    this: Command,
    runId: string | undefined,
  ) {
    const globals = globalOptions(this);
    const output = commandOutput(this);
    const statePath = resolveStateLocation(process.cwd(), globals.state);
    const store = await openStateStore(statePath, { readonly: true });
    try {
      const run = await findRun(store, runId, statePath);
      const byStep = await store.history.stepCosts(run.id);
      const spentTotal = await store.history.runCost(run.id);
      const maxCostMicros = (run.options as { maxCostMicros?: unknown } | undefined)?.maxCostMicros;
      const report: RunStatusReport = {
        run,
        cost: costToJson(spentTotal),
        stepCosts: [...byStep].map(([address, cost]) => ({ address, ...costToJson(cost) })),
        maxCostUsd: typeof maxCostMicros === "number" ? usdOf(maxCostMicros) : undefined,
        counts: await store.steps.countByState(run.id),
        problems: (await store.steps.list(run.id, { states: PROBLEM_STATES })).map(
          ({ address, state, error, requestId }) => ({ address, state, error, requestId }),
        ),
        outputs: [],
      };
      const reusedFrom = new Map(
        (await store.steps.list(run.id, { states: ["reused"] })).map((step) => [
          step.address,
          step.reusedFromRun ?? run.id,
        ]),
      );
      for (const { address, name, index, path: file, url, bytes, sha256 } of await store.outputs.list(
        run.id,
      )) {
        const producedBy = reusedFrom.get(address) ?? run.id;
        report.outputs.push({ address, name, index, path: file, url, bytes, sha256, producedBy });
      }
      const workers = await store.workers.list(Date.now() - WORKER_DEAD_AFTER_MS);
      if (globals.json) {
        output.stdout(
          JSON.stringify(
            { ...report, run: runJson(run), ...(workers.length > 0 ? { workers } : {}) },
            null,
            2,
          ),
        );
        return;
      }
      const finished =
        run.finishedAt === undefined ? "" : ` in ${formatDuration(run.finishedAt - run.startedAt)}`;
      const lines = [
        `run ${run.id} (${run.kind} of ${run.workflowName}, ${run.workflowFile}): ${shownStatus(run)}${finished}`,
        `started ${new Date(run.startedAt).toISOString()}${run.parentRunId ? `, retry of ${run.parentRunId}` : ""}`,
        `api: ${describeOrigin(run.apiOrigin)}${isEmulatorOrigin(run.apiOrigin) ? " — an emulator: test media, nothing billed" : ""}`,
        stepCountsLine(report.counts),
      ];
      // A shared (PostgreSQL) state: the live workers, and what each does of this run.
      for (const worker of workers) {
        const mine = worker.doing.filter((doing) => doing.startsWith(`${run.id} `)).length;
        lines.push(
          `worker ${worker.name} (${worker.host}, pid ${worker.pid}): ${mine} step${mine === 1 ? "" : "s"} of this run, ${worker.doing.length} in all`,
        );
      }
      const spent = formatCost(spentTotal);
      if (spent !== "—" || typeof maxCostMicros === "number") {
        const budget = typeof maxCostMicros === "number" ? ` of a budget of ${formatUsd(maxCostMicros)}` : "";
        // An emulator's costs are what it was set to charge: nothing was paid.
        const emulated = isEmulatorOrigin(run.apiOrigin) ? " (emulated)" : "";
        lines.push(`cost: ${spent === "—" ? "$0.00" : spent}${emulated}${budget}`);
      }
      if (run.finishedByRun !== undefined)
        lines.push(`the steps it left unfinished were finished by run ${run.finishedByRun}`);
      if (report.problems.length > 0) {
        lines.push("not succeeded:");
        for (const problem of report.problems.slice(0, LISTED)) {
          lines.push(
            `  ${problem.address} ${stateLabel(problem.state)}${problem.error ? `: ${problem.error}` : ""}`,
          );
        }
        if (report.problems.length > LISTED)
          lines.push(`  … and ${report.problems.length - LISTED} more (--json lists them all)`);
      }
      if (byStep.size > 0) {
        lines.push("cost per step:");
        for (const [address, cost] of [...byStep].slice(0, LISTED))
          lines.push(`  ${address} ${formatCost(cost)}`);
        if (byStep.size > LISTED) lines.push(`  … and ${byStep.size - LISTED} more (--json lists them all)`);
      }
      const files = report.outputs.filter((o) => o.path !== undefined);
      if (files.length > 0) {
        lines.push(`outputs (${files.length}):`);
        for (const file of files.slice(0, LISTED))
          lines.push(
            `  ${file.address} ${file.name}: ${displayPath(file.path!)}${
              file.producedBy === run.id ? "" : ` (made by run ${file.producedBy})`
            }`,
          );
        if (files.length > LISTED)
          lines.push(`  … and ${files.length - LISTED} more (--json lists them all)`);
      }
      const retryable = report.problems.filter((problem) => problem.state !== "unknown").length;
      const retry = retryCommand(run.id, globals, {
        emulator: (run.options as { emulator?: unknown })?.emulator === true,
      });
      if (retryable > 0 && run.status !== "running" && run.finishedByRun === undefined)
        lines.push(`to retry: ${retry}`);
      if (report.problems.some((problem) => problem.state === "unknown"))
        lines.push(`unknown steps may already be billed; to submit them again: ${retry} --resubmit-unknown`);
      output.stdout(lines.join("\n"));
    } finally {
      await store.close();
    }
  });
}
