/**
 * The words every view uses for steps and their counts: the live header, the plain log, the
 * summary, `status`, `runs`, `plan`, `validate` and the reports. One place, so a run reads
 * the same wherever it is looked at (README "States").
 *
 * A step's stored state (`in_queue`, `timed_out`, …) is shown as it is: it is also what
 * `--json` and the database say. Counts are by group — the six of the live header — in
 * that order, and the failed group names its other ends (`3 failed (1 unknown, 1 blocked)`),
 * which call for different actions. The group `done` (a stable JSON value) reads `succeeded`,
 * the word of the state it holds and of a run that went well.
 *
 * Jobs are the workflow's `jobs:`; an instance is one of a job's `for_each` items
 * (`JOB/KEY`), and holds one run of each of the job's steps.
 */
import { DISPLAY_GROUP, type StepState } from "../engine/states.js";
import { countOf, formatCount } from "../util/counting.js";

export type DisplayGroup = (typeof DISPLAY_GROUP)[StepState];

/** The groups in the order every view lists them. */
export const GROUP_ORDER: readonly DisplayGroup[] = [
  "queued",
  "submitted",
  "running",
  "done",
  "reused",
  "failed",
];

/** What a group is called in text. */
export const GROUP_LABEL: Readonly<Record<DisplayGroup, string>> = {
  queued: "queued",
  submitted: "submitted",
  running: "running",
  done: "succeeded",
  reused: "reused",
  failed: "failed",
};

/** How a step's state reads: as stored (the words of `--json` and the database). */
export function stateLabel(state: string): string {
  return state;
}

/** How a count is written (kept in util/ so the engine's own messages can use it too). */
export { countOf, formatCount } from "../util/counting.js";

/** `6 steps in 3 instances`, with `of 1 job` when the number of jobs is known and matters. */
export function scopePhrase(counts: { steps: number; instances: number; jobs?: number | undefined }): string {
  const jobs = counts.jobs === undefined ? "" : ` of ${countOf(counts.jobs, "job")}`;
  return `${countOf(counts.steps, "step")} in ${countOf(counts.instances, "instance")}${jobs}`;
}

/** Sums counts per stored state into the groups (states this version does not know count as failed). */
export function groupCounts(byState: Readonly<Record<string, number>>): Record<DisplayGroup, number> {
  const groups: Record<DisplayGroup, number> = {
    queued: 0,
    submitted: 0,
    running: 0,
    done: 0,
    reused: 0,
    failed: 0,
  };
  for (const [state, count] of Object.entries(byState)) {
    groups[DISPLAY_GROUP[state as StepState] ?? "failed"] += count;
  }
  return groups;
}

/** `4 queued`, `0 succeeded`: one group's count. */
export function groupCount(group: DisplayGroup, count: number): string {
  return `${formatCount(count)} ${GROUP_LABEL[group]}`;
}

/**
 * The counts of a run's steps: `73 queued, 2 submitted, 4 running, 3 failed (1 unknown)`.
 * Groups with no step are left out (`none` when there is none at all).
 */
export function countsPhrase(byState: Readonly<Record<string, number>>): string {
  const groups = groupCounts(byState);
  const parts: string[] = [];
  for (const group of GROUP_ORDER) {
    if (groups[group] === 0) continue;
    let part = groupCount(group, groups[group]);
    if (group === "failed") {
      const others = failedDetail(byState).map(
        ([state, count]) => `${formatCount(count)} ${stateLabel(state)}`,
      );
      if (others.length > 0) part += ` (${others.join(", ")})`;
    }
    parts.push(part);
  }
  return parts.join(", ") || "none";
}

/** The failed group's ends other than `failed` itself, in a fixed order (then any this version does not know). */
const FAILED_DETAIL: readonly string[] = ["timed_out", "cancelled", "unknown", "blocked", "held"];

function failedDetail(byState: Readonly<Record<string, number>>): [string, number][] {
  const known = FAILED_DETAIL.map((state): [string, number] => [state, byState[state] ?? 0]);
  const unknown = Object.entries(byState).filter(([state]) => !(state in DISPLAY_GROUP));
  return [...known, ...unknown].filter(([, count]) => count > 0);
}

/** `3 steps: 1 succeeded, 2 failed (1 blocked)`: the total, then the counts. */
export function stepCountsLine(byState: Readonly<Record<string, number>>): string {
  const total = Object.values(byState).reduce((sum, count) => sum + count, 0);
  return `${countOf(total, "step")}: ${countsPhrase(byState)}`;
}
