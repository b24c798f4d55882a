/**
 * The end-of-run summary every apply prints (SPEC §6): counts, elapsed time, the steps that
 * did not succeed with their errors, where the outputs are, and the command to go on. Built
 * from the event stream only; what the events cannot know (where outputs went, how the
 * command was called) is passed in by the command.
 */
import type { RunEvent, RunFinishedEvent, RunStartedEvent } from "../engine/events.js";
import { formatUsd, microsFromUsd } from "../cost/money.js";
import { formatDuration } from "../util/duration.js";
import { countOf, stateLabel, stepCountsLine } from "./vocabulary.js";

const NOT_SUCCEEDED = new Set(["failed", "timed_out", "cancelled", "unknown", "held"]);
/** More failed steps than this are counted, not listed: `runflow status` shows them all. */
const MAX_LISTED = 20;

export interface StepProblem {
  address: string;
  state: string;
  error: string | undefined;
}

/** Collects what the summary needs while the run goes. */
export class SummaryCollector {
  started: RunStartedEvent | undefined;
  finished: RunFinishedEvent | undefined;
  /** The latest non-success end of each step (a later success removes it). */
  readonly problems = new Map<string, StepProblem>();

  readonly listener = (event: RunEvent): void => {
    if (event.event === "run_started") this.started = event;
    else if (event.event === "run_finished") this.finished = event;
    else if (event.event === "step") {
      if (NOT_SUCCEEDED.has(event.state)) {
        this.problems.set(event.address, { address: event.address, state: event.state, error: event.error });
      } else if (event.state === "succeeded" || event.state === "reused") {
        this.problems.delete(event.address);
      }
    }
  };
}

export interface SummaryContext {
  /** Where the outputs are, as the user should read it (relative to their folder when inside it). */
  outputs: string | undefined;
  /** The exact command that re-runs what did not succeed. */
  retryCommand: string;
  /** The exact command that resumes an interrupted run. */
  resumeCommand: string;
  /** Whether outputs were downloaded (with `--no-download` only their URLs are recorded). */
  downloads: boolean;
}

const HEADLINE: Record<RunFinishedEvent["status"], string> = {
  succeeded: "succeeded",
  failed: "finished with failures",
  interrupted: "was interrupted",
  cancelled: "was cancelled",
  auth_failed: "stopped: the API refused the token",
};

export function summaryLines(collected: SummaryCollector, context: SummaryContext): string[] {
  const finished = collected.finished;
  if (!finished) return [];
  const lines = [
    `run ${finished.runId} ${HEADLINE[finished.status]} in ${formatDuration(finished.elapsedMs)} — ${stepCountsLine(finished.counts)}`,
  ];
  const problems = [...collected.problems.values()];
  if (problems.length > 0) {
    lines.push("not succeeded:");
    for (const problem of problems.slice(0, MAX_LISTED)) {
      lines.push(
        `  ${problem.address} ${stateLabel(problem.state)}${problem.error ? `: ${problem.error}` : ""}`,
      );
    }
    if (problems.length > MAX_LISTED)
      lines.push(`  … and ${problems.length - MAX_LISTED} more (runflow status ${finished.runId})`);
  }
  lines.push(...costLines(finished));
  const blocked = finished.counts.blocked ?? 0;
  if (blocked > 0) lines.push(`${countOf(blocked, "step")} blocked: a step they depend on did not succeed`);
  if (context.outputs && context.downloads) lines.push(`outputs: ${context.outputs}`);
  if (finished.status === "interrupted") {
    lines.push(`state is saved; to resume: ${context.resumeCommand}`);
  } else if (finished.status === "auth_failed") {
    lines.push(`check RUNCOMFY_API_TOKEN, then resume: ${context.resumeCommand}`);
  } else if (finished.status !== "succeeded") {
    const unknown = (finished.counts.unknown ?? 0) > 0;
    lines.push(`to retry: ${context.retryCommand}`);
    if (unknown) {
      lines.push(
        `unknown steps may already be billed and are not resubmitted; to submit them again: ${context.retryCommand} --resubmit-unknown`,
      );
    }
  }
  return lines;
}

/** `cost: $1.23`, and with a budget what was spent of it (SPEC §9). */
export function costLines(finished: Pick<RunFinishedEvent, "cost" | "budget">): string[] {
  const lines: string[] = [];
  const cost = finished.cost;
  if (cost && (cost.unknown > 0 || (cost.usd ?? 0) > 0)) lines.push(`cost: ${costText(cost)}`);
  const budget = finished.budget;
  if (budget) {
    const spent = `${formatUsd(microsFromUsd(budget.spentUsd) ?? 0)} of ${formatUsd(microsFromUsd(budget.maxUsd) ?? 0)} spent`;
    lines.push(
      budget.reached
        ? `budget reached: ${spent}, ${countOf(budget.notSubmitted, "step")} not submitted`
        : `budget: ${spent}`,
    );
  }
  return lines;
}

/** `$1.23`, `$1.23 + unknown (2 requests reported no cost)`, `unknown`. */
export function costText(cost: { usd: number | null; unknown: number }): string {
  if (cost.usd === null) return "unknown (the API reported no cost)";
  const shown = formatUsd(microsFromUsd(cost.usd) ?? 0);
  if (cost.unknown === 0) return shown;
  return `${shown} + unknown (${countOf(cost.unknown, "request")} reported no cost)`;
}
