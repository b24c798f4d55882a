/**
 * The report as Markdown (`report --format md`): readable as plain text, in a pull request
 * or a wiki. Media are linked (relative to the report file), not embedded.
 */
import { formatDuration } from "../util/duration.js";
import { escapeMarkdown, markdownCodeBlock } from "./escape.js";
import { costText } from "../render/summary.js";
import { countOf, countsPhrase, scopePhrase, stateLabel } from "../render/vocabulary.js";
import { type JobReport, type MediaRef, type RunReport, type StepReport } from "./model.js";
import { formatTimestamp } from "./time.js";

const md = escapeMarkdown;

/** A link target inside `<…>`, so spaces and parentheses in a path cannot end it early. */
function linkTarget(href: string): string {
  return `<${href.replace(/[<>\s]/g, encodeURIComponent)}>`;
}

function mediaLine(media: MediaRef, role: "input" | "output"): string {
  const label = media.index === undefined ? media.name : `${media.name}[${media.index}]`;
  if (media.missing) return `${md(label)}: file missing (${md(media.path ?? "")})`;
  if (media.changed)
    return `${md(label)}: file changed since this run (${md(media.path ?? "")} is not the file it recorded)`;
  if (media.href === undefined) return `${md(label)}: —`;
  // A local file reads as its path relative to the report, which is also the link.
  const shown = media.local ? decodeURIComponent(media.href) : media.href;
  const link = `[${md(shown)}](${linkTarget(media.href)})`;
  const where = media.local ? "" : role === "input" ? ", remote" : ", not downloaded";
  // A captured input links its copy, then the URL it was captured from.
  const original =
    media.captured && media.local && media.url !== undefined
      ? `, captured from [${md(media.url)}](${linkTarget(media.url)})`
      : "";
  return `${md(label)} (${media.kind}${where}): ${link}${original}`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function stepState(step: StepReport): string {
  if (step.state === "reused" && step.reusedFromRun) return `reused from ${md(step.reusedFromRun)}`;
  return md(stateLabel(step.state));
}

function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? "";
}

function stepSection(step: StepReport): string[] {
  const lines = [`#### ${md(step.stepId)}${step.group === "failed" ? " — FAILED" : ""}`, ""];
  const facts = [
    `state: ${stepState(step)}`,
    step.model ? `model: ${md(step.model)}` : undefined,
    `attempts: ${step.attempts}`,
    step.durationMs !== undefined ? `duration: ${formatDuration(step.durationMs)}` : undefined,
    step.requestId ? `request: ${md(step.requestId)}` : undefined,
    step.cost ? `cost: ${costText(step.cost)}` : undefined,
  ].filter((fact): fact is string => fact !== undefined);
  lines.push(`- ${facts.join(" · ")}`);
  if (step.startedAt !== undefined) {
    const finished = step.finishedAt !== undefined ? ` → ${formatTimestamp(step.finishedAt)}` : "";
    lines.push(`- time: ${formatTimestamp(step.startedAt)}${finished}`);
  }
  for (const prompt of step.prompts) lines.push(`- ${md(prompt.name)}: ${md(prompt.text)}`);
  for (const input of step.inputs) lines.push(`- input ${mediaLine(input, "input")}`);
  for (const parameter of step.parameters) lines.push(`- ${md(parameter.name)}: ${md(parameter.value)}`);
  if (step.command) lines.push(`- command: ${md(step.command.join(" "))}`);
  for (const output of step.outputs) lines.push(`- output ${mediaLine(output, "output")}`);
  if (step.error) lines.push("", markdownCodeBlock(step.error));
  lines.push("");
  return lines;
}

function jobSection(job: JobReport): string[] {
  const cost = job.cost ? ` — ${costText(job.cost)}` : "";
  return [`### ${md(job.key)} — ${job.status}${cost}`, "", ...job.steps.flatMap(stepSection)];
}

export function renderReportMarkdown(report: RunReport): string {
  const { run, counts } = report;
  const lines: string[] = [`# ${md(run.workflow)} — run ${md(run.id)}`, ""];
  const status = run.exitCode === undefined ? run.status : `${run.status} (exit ${run.exitCode})`;
  lines.push(`- status: ${md(status)}`);
  lines.push(`- workflow file: ${md(run.workflowFile)}`);
  lines.push(
    run.emulator
      ? `- **against an emulator** (${md(run.apiOrigin ?? "")}): test media, nothing billed`
      : `- api: ${md(run.apiOrigin ?? "not recorded")}`,
  );
  lines.push(`- kind: ${run.kind}${run.parentRunId ? ` of run ${md(run.parentRunId)}` : ""}`);
  const finished =
    run.finishedAt !== undefined ? `, finished ${formatTimestamp(run.finishedAt)}` : ", not finished";
  const elapsed = run.elapsedMs !== undefined ? ` (${formatDuration(run.elapsedMs)})` : "";
  lines.push(`- started ${formatTimestamp(run.startedAt)}${finished}${elapsed}`);
  if (run.cost) lines.push(`- cost: ${costText(run.cost)}`);
  lines.push(
    `- ${scopePhrase({ steps: counts.steps, instances: counts.jobs })} (${countOf(counts.failedJobs, "instance")} failed): ` +
      countsPhrase(counts.byState),
  );
  lines.push(`- report generated ${formatTimestamp(report.generatedAt)}`, "");

  if (report.failed.length > 0) {
    lines.push("## Failed steps", "", "| step | state | attempts | error |", "| --- | --- | --- | --- |");
    for (const step of report.failed) {
      lines.push(
        `| ${md(step.address)} | ${md(stateLabel(step.state))} | ${step.attempts} | ${md(firstLine(step.error ?? ""))} |`,
      );
    }
    lines.push("");
  }
  if (report.retry) {
    lines.push(
      `Re-run the ${plural(report.retry.steps, "failed step", "failed steps")} (and what depends on them):`,
      "",
    );
    lines.push(markdownCodeBlock(report.retry.command), "");
  }
  if (report.unknownSteps > 0) {
    lines.push(
      `${plural(report.unknownSteps, "step", "steps")} ended \`unknown\` (the request may exist and be billed): ` +
        "`retry` resubmits them only with `--resubmit-unknown`.",
      "",
    );
  }
  lines.push("## Jobs", "", ...report.jobs.flatMap(jobSection));
  return `${lines.join("\n").trimEnd()}\n`;
}
