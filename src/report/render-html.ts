/**
 * The report as one self-contained HTML page (`report --format html`): a gallery with a card
 * per job instance — its inputs (prompt, source image), its outputs as playable videos and
 * images, timings and errors —, counts at the top and a "show failed only" filter.
 *
 * Media are never embedded: `src` is the downloaded file's path relative to the report, so
 * a page for 10,000 videos stays small and opens from disk. Every value from the run is
 * escaped, and a Content-Security-Policy allows only the page's own script.
 */
import { formatDuration } from "../util/duration.js";
import { escapeHtml as h } from "./escape.js";
import { contentSecurityPolicy, REPORT_CSS, REPORT_SCRIPT } from "./html-assets.js";
import { countOf, GROUP_LABEL } from "../render/vocabulary.js";
import { DISPLAY_GROUPS, type JobReport, type MediaRef, type RunReport, type StepReport } from "./model.js";
import { formatTimestamp } from "./time.js";

/**
 * Above this many local videos, players load nothing until played: a browser opening
 * thousands of files at once would stall, and caps its live media players anyway.
 */
export const EAGER_VIDEO_LIMIT = 200;

function time(ms: number): string {
  return `<time datetime="${new Date(ms).toISOString()}">${formatTimestamp(ms)}</time>`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1_000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1_000;
  let unit = 0;
  while (value >= 1_000 && unit < units.length - 1) {
    value /= 1_000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function mediaLabel(media: MediaRef): string {
  return media.index === undefined ? media.name : `${media.name}[${media.index}]`;
}

function caption(media: MediaRef): string {
  const parts = [h(mediaLabel(media))];
  if (media.bytes !== undefined) parts.push(formatBytes(media.bytes));
  const link = media.href !== undefined ? ` <a href="${h(media.href)}">open</a>` : "";
  return `<figcaption>${parts.join(" · ")}${link}</figcaption>`;
}

interface MediaContext {
  videoPreload: "metadata" | "none";
}

/** A media element for a file on disk or, for an input image, where it lives; otherwise a link. */
function mediaFigure(media: MediaRef, role: "input" | "output", context: MediaContext): string {
  const label = h(mediaLabel(media));
  if (media.missing) {
    return `<figure><p class="missing">${label}: file missing (${h(media.path ?? "")})</p></figure>`;
  }
  if (media.href === undefined) return `<figure><p>${label}: —</p></figure>`;
  const src = h(media.href);
  if (media.local && media.kind === "video") {
    return (
      `<figure><video controls muted playsinline preload="${context.videoPreload}" src="${src}">` +
      `<a href="${src}">${label}</a></video>${caption(media)}</figure>`
    );
  }
  // A source image that was never downloaded is shown from its own host; an output that was
  // not downloaded (--no-download) is only linked, since its URL expires.
  if (media.kind === "image" && (media.local || role === "input")) {
    return (
      `<figure><img src="${src}" alt="${label}" loading="lazy" referrerpolicy="no-referrer">` +
      `${caption(media)}</figure>`
    );
  }
  const note = media.local ? "" : " (not downloaded)";
  return `<figure><p><a href="${src}">${label}</a>${note}</p></figure>`;
}

function stepBadge(step: StepReport): string {
  return `<span class="badge badge-${step.group}">${h(step.state.replace("_", " "))}</span>`;
}

function facts(step: StepReport): string {
  const rows: [string, string][] = [];
  rows.push(["attempts", String(step.attempts)]);
  if (step.startedAt !== undefined) rows.push(["started", time(step.startedAt)]);
  if (step.finishedAt !== undefined) rows.push(["finished", time(step.finishedAt)]);
  if (step.durationMs !== undefined) rows.push(["duration", formatDuration(step.durationMs)]);
  if (step.requestId) rows.push(["request", `<code>${h(step.requestId)}</code>`]);
  if (step.reusedFromRun) rows.push(["reused from", `run <code>${h(step.reusedFromRun)}</code>`]);
  return `<dl class="facts">${rows.map(([name, value]) => `<dt>${name}</dt><dd>${value}</dd>`).join("")}</dl>`;
}

function stepSection(step: StepReport, context: MediaContext): string {
  const parts: string[] = [];
  const model = step.model ? ` <span class="model">${h(step.model)}</span>` : "";
  parts.push(`<h3><span class="step-id">${h(step.stepId)}</span> ${stepBadge(step)}${model}</h3>`);
  for (const prompt of step.prompts) {
    parts.push(`<p class="prompt"><span class="label">${h(prompt.name)}</span>${h(prompt.text)}</p>`);
  }
  if (step.command) {
    parts.push(
      `<p class="params"><span class="label">command</span><code>${h(step.command.join(" "))}</code></p>`,
    );
  }
  if (step.inputs.length > 0) {
    const figures = step.inputs.map((media) => mediaFigure(media, "input", context)).join("");
    parts.push(`<div class="media inputs"><span class="label">input</span>${figures}</div>`);
  }
  if (step.parameters.length > 0) {
    const text = step.parameters.map((p) => `${h(p.name)}: <code>${h(p.value)}</code>`).join(" · ");
    parts.push(`<p class="params">${text}</p>`);
  }
  if (step.outputs.length > 0) {
    const figures = step.outputs.map((media) => mediaFigure(media, "output", context)).join("");
    parts.push(`<div class="media outputs">${figures}</div>`);
  }
  parts.push(facts(step));
  if (step.error) parts.push(`<pre class="error">${h(step.error)}</pre>`);
  if (step.stdout)
    parts.push(`<details><summary>stdout</summary><pre class="stdout">${h(step.stdout)}</pre></details>`);
  return (
    `<section class="step step-${step.group}" data-step="${h(step.address)}" data-state="${step.state}">` +
    `${parts.join("\n")}</section>`
  );
}

function jobCard(job: JobReport, anchor: string, context: MediaContext): string {
  const steps = job.steps.map((step) => stepSection(step, context)).join("\n");
  return (
    `<article class="job job-${job.status}" id="${anchor}" data-job="${h(job.key)}" data-status="${job.status}">\n` +
    `<h2><span class="job-key">${h(job.key)}</span> <span class="badge badge-${job.status}">${job.status}</span></h2>\n` +
    `${steps}\n</article>`
  );
}

function runHeader(report: RunReport, anchors: ReadonlyMap<string, string>): string {
  const { run, counts } = report;
  const meta = [
    `${h(run.kind)}${run.parentRunId ? ` of run <code>${h(run.parentRunId)}</code>` : ""}`,
    `<code>${h(run.workflowFile)}</code>`,
    `started ${time(run.startedAt)}`,
    run.finishedAt !== undefined ? `finished ${time(run.finishedAt)}` : "not finished",
  ];
  if (run.elapsedMs !== undefined) meta.push(`elapsed ${formatDuration(run.elapsedMs)}`);
  if (run.exitCode !== undefined) meta.push(`exit ${run.exitCode}`);
  const countItems = DISPLAY_GROUPS.map((group) => {
    const n = counts.byGroup[group];
    return `<li class="count group-${group}${n > 0 ? " nonzero" : ""}"><span class="n">${n}</span> ${GROUP_LABEL[group]}</li>`;
  });
  countItems.push(
    `<li class="count"><span class="n">${counts.steps}</span> ${counts.steps === 1 ? "step" : "steps"}</li>`,
  );
  countItems.push(
    `<li class="count jobs"><span class="n">${counts.jobs}</span> ${counts.jobs === 1 ? "instance" : "instances"}, <span class="n">${counts.failedJobs}</span> failed</li>`,
  );
  const parts = [
    `<h1>${h(run.workflow)} <span class="run-id">run ${h(run.id)}</span> ` +
      `<span class="badge badge-${run.status === "succeeded" ? "succeeded" : run.status === "running" ? "running" : "failed"}">${h(run.status)}</span></h1>`,
    `<p class="meta">${meta.join(" · ")}</p>`,
    `<ul class="counts">${countItems.join("")}</ul>`,
    `<label class="filter"><input type="checkbox" id="failed-only"> show failed only (${counts.failedJobs} of ${countOf(counts.jobs, "instance")})</label>`,
  ];
  if (report.failed.length > 0) {
    const items = report.failed.map((step) => {
      const anchor = anchors.get(step.job) ?? "";
      const error = step.error
        ? ` <span class="error-line">${h(step.error.split(/\r?\n/, 1)[0] ?? "")}</span>`
        : "";
      return `<li><a href="#${anchor}">${h(step.address)}</a> ${h(step.state)}${error}</li>`;
    });
    parts.push(`<section class="failures"><h2>Failed steps</h2><ol>${items.join("")}</ol>`);
    if (report.retry) {
      parts.push(`<p>Re-run them (and what depends on them): <code>${h(report.retry.command)}</code></p>`);
    }
    if (report.unknownSteps > 0) {
      parts.push(
        `<p>${report.unknownSteps} ${report.unknownSteps === 1 ? "step" : "steps"} ended <code>unknown</code> ` +
          `(the request may exist and be billed): retry resubmits them only with <code>--resubmit-unknown</code>.</p>`,
      );
    }
    parts.push(`</section>`);
  }
  return `<header class="run">\n${parts.join("\n")}\n</header>`;
}

export function renderReportHtml(report: RunReport): string {
  const anchors = new Map(report.jobs.map((job, index) => [job.key, `job-${index + 1}`]));
  const localVideos = report.jobs
    .flatMap((job) => job.steps)
    .flatMap((step) => [...step.inputs, ...step.outputs])
    .filter((media) => media.local && media.kind === "video").length;
  const context: MediaContext = { videoPreload: localVideos <= EAGER_VIDEO_LIMIT ? "metadata" : "none" };
  const cards = report.jobs.map((job) => jobCard(job, anchors.get(job.key) ?? "", context));
  const title = `${report.run.workflow} — run ${report.run.id} — runflow report`;
  const bodyClass = report.counts.failedJobs === 0 ? ' class="no-failures"' : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy()}">
<meta name="generator" content="runflow">
<title>${h(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body${bodyClass}>
${runHeader(report, anchors)}
<p class="empty-filter">No job failed.</p>
<main class="gallery">
${cards.join("\n")}
</main>
<footer>Generated by runflow at ${time(report.generatedAt)}. Media are the downloaded files, linked relative to this page.</footer>
<script>${REPORT_SCRIPT}</script>
</body>
</html>
`;
}
