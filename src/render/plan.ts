/** How `runflow plan` shows a Plan: lines for people, JSON for machines. */
import path from "node:path";
import { scopePhrase } from "./vocabulary.js";
import type { Plan, PlannedStep } from "../plan/types.js";

/** An argument as a shell would need it quoted: only to show the command, never to run it. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function relative(file: string, base: string): string {
  const shown = path.relative(base, file);
  return shown === "" ? "." : shown.startsWith("..") ? file : shown;
}

function instanceCount(plan: Plan): number {
  const instances = new Set<string>();
  for (const step of plan.steps) instances.add(`${step.jobId}/${step.instanceKey}`);
  return instances.size;
}

/**
 * The one-line header: `teasers: 9 steps in 3 instances — 3 to submit, 0 reused, 3 deferred, 3 to run`,
 * with the steps re-attached to earlier requests and those held as unknown when there are any.
 */
export function planHeadline(plan: Plan): string {
  const { counts } = plan;
  const parts = [`${counts.submit} to submit`, `${counts.reuse} reused`];
  if (counts.reattach > 0) parts.push(`${counts.reattach} re-attached`);
  if (counts.unknown > 0) parts.push(`${counts.unknown} held as unknown`);
  parts.push(`${counts.deferred} deferred`, `${counts.run} to run`);
  return `${plan.workflow.name}: ${scopePhrase({ steps: counts.total, instances: instanceCount(plan) })} — ${parts.join(", ")}`;
}

function stepLines(step: PlannedStep, base: string): string[] {
  const waits = step.dependsOn.map((address) => address.slice(address.lastIndexOf("/") + 1));
  const after = waits.length > 0 ? `  (after ${waits.join(", ")})` : "";
  const lines: string[] = [];
  if (step.kind === "model") {
    lines.push(`  ${step.stepId}  ${step.decision}  ${step.model ?? ""}${after}`);
    if (step.decision === "reuse" && step.reuse) {
      lines.push(
        `      reused from run ${step.reuse.runId} (${step.reuse.address}, finished ${new Date(step.reuse.finishedAt).toISOString()})`,
      );
    }
    if (step.decision === "reattach" && step.unfinished?.kind === "reattach") {
      lines.push(
        `      re-attaches to request ${step.unfinished.requestId} (submitted by run ${step.unfinished.runId}): collected, not sent again`,
      );
    }
    if (step.body) lines.push(`      body ${JSON.stringify(step.body)}`);
    else
      lines.push(
        `      input ${JSON.stringify(step.input ?? {})}  (known at run time: ${step.deferredFields.join(", ")})`,
      );
    for (const problem of step.problems ?? []) lines.push(`      problem: ${problem}`);
  } else {
    lines.push(`  ${step.stepId}  run  ${(step.argv ?? []).map(shellWord).join(" ")}${after}`);
    if (step.cwd) lines.push(`      in ${relative(step.cwd, base)}`);
    const outputs = Object.entries(step.outputNames ?? {});
    if (outputs.length > 0) {
      lines.push(
        `      outputs ${outputs.map(([name, file]) => `${name}=${relative(file, base)}`).join(", ")}`,
      );
    }
  }
  return lines;
}

/**
 * What `runflow plan` prints: the headline, then per instance its outputs folder and its
 * steps with their decision and the exact request body (or what stays to be known).
 * Paths are shown relative to `base` (default: the current folder).
 */
export function planSummaryLines(plan: Plan, base: string = process.cwd()): string[] {
  const lines = [planHeadline(plan)];
  let instance = "";
  for (const step of plan.steps) {
    const address = `${step.jobId}/${step.instanceKey}`;
    if (address !== instance) {
      instance = address;
      lines.push("", `${address}  → ${relative(step.outputsDir, base)}`);
    }
    lines.push(...stepLines(step, base));
  }
  return lines;
}

/** The Plan as one JSON document (`plan --json`, and what the store keeps with a run). */
export function planToJson(plan: Plan, options: { pretty?: boolean } = {}): string {
  return JSON.stringify(plan, null, options.pretty === false ? undefined : 2);
}
