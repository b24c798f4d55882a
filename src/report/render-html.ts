/**
 * The report as one HTML page (`report --format html`): a gallery a creator can scan after
 * a night of work — a compact tile per job instance (a thumbnail of its last output, its
 * status, its steps, the first line of its error), failed jobs first, filters by state and
 * by model, and each job's detail (prompts, inputs, players, parameters, timings, errors)
 * on demand in a `<details>`.
 *
 * Media are never embedded: `src` is the downloaded file's path relative to the report, and
 * each file appears once in the page (a step input that is an earlier step's output links
 * to it). A video is its poster frame until played (see videoLink); without a poster (no
 * ffmpeg) a neutral tile stands in. Every value from the run is escaped, and a
 * Content-Security-Policy allows only the page's own script.
 */
import { costText } from "../render/summary.js";
import { formatDuration } from "../util/duration.js";
import { escapeHtml as h } from "./escape.js";
import { contentSecurityPolicy, modelFilterCss, REPORT_CSS, REPORT_SCRIPT } from "./html-assets.js";
import { GROUP_LABEL } from "../render/vocabulary.js";
import {
  DISPLAY_GROUPS,
  type JobReport,
  type JobStatus,
  type MediaRef,
  type RunReport,
  type StepReport,
} from "./model.js";
import type { MediaPreview, MediaPreviews } from "./thumbnails.js";
import { formatTimestamp } from "./time.js";

export interface HtmlReportOptions {
  /** Thumbnails and durations of the local files, by absolute path (see makeThumbnails). */
  previews?: MediaPreviews | undefined;
}

/** Above this many failed steps the list at the top starts folded (the tiles say it too). */
const OPEN_FAILURE_LIST_LIMIT = 20;

/** The order of the gallery: what needs attention first, then plan order. */
const STATUS_ORDER: Record<JobStatus, number> = { failed: 0, unfinished: 1, succeeded: 2 };

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

function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? "";
}

function fileName(media: MediaRef): string {
  const location = media.path ?? media.url ?? "";
  return location.slice(Math.max(location.lastIndexOf("/"), location.lastIndexOf("\\")) + 1);
}

/** Where each file is shown, so every other mention links there instead of showing it again. */
interface PageIndex {
  previews: MediaPreviews;
  /** Output (by local path and by URL) → the id of its figure and what to call it. */
  outputs: Map<string, { id: string; label: string }>;
  /** Local files the gallery tile shows itself (an image without a thumbnail). */
  inTile: Set<string>;
  /** Model → filter token (`m1`, `m2` …): CSS classes never carry user text. */
  modelTokens: Map<string, string>;
}

function previewOf(index: PageIndex, media: MediaRef): MediaPreview | undefined {
  return media.path === undefined ? undefined : index.previews.get(media.path);
}

function sizeAndDuration(media: MediaRef, preview: MediaPreview | undefined): string[] {
  const parts: string[] = [];
  if (preview?.durationMs !== undefined) parts.push(formatDuration(preview.durationMs));
  if (media.bytes !== undefined) parts.push(formatBytes(media.bytes));
  return parts;
}

function caption(media: MediaRef, preview: MediaPreview | undefined, note = ""): string {
  const parts = [h(mediaLabel(media)), ...sizeAndDuration(media, preview)];
  return `<figcaption>${parts.join(" · ")}${note}</figcaption>`;
}

/**
 * A local video: its poster frame with a play mark, linking to the file. The page holds no
 * `<video>` until one is asked for — a thousand players cost Chromium seconds to build — so
 * a click swaps the poster for a player (the page's script); without script the link
 * opens the file. Without a poster (no ffmpeg), a neutral tile with the file's name,
 * duration and size stands in: never a blank player.
 */
function videoLink(media: MediaRef, preview: MediaPreview | undefined, href: string): string {
  if (preview?.thumbnail !== undefined) {
    return (
      `<a class="player" href="${h(href)}"><img src="${h(preview.thumbnail)}" alt="${h(mediaLabel(media))}" loading="lazy" decoding="async">` +
      `<span class="play" aria-hidden="true">▶</span></a>`
    );
  }
  const facts = sizeAndDuration(media, preview).join(" · ");
  return (
    `<a class="player video-tile" href="${h(href)}"><span class="play" aria-hidden="true">▶</span>` +
    `<span class="file-name">${h(fileName(media))}</span>${facts ? `<span>${facts}</span>` : ""}</a>`
  );
}

/** An output (or a local input): the one place the page shows this file. */
function mediaFigure(media: MediaRef, index: PageIndex, id: string | undefined): string {
  const label = h(mediaLabel(media));
  const idAttribute = id ? ` id="${id}"` : "";
  if (media.missing) {
    return `<figure${idAttribute}><p class="missing">${label}: file missing (${h(media.path ?? "")})</p></figure>`;
  }
  if (media.changed) {
    return `<figure${idAttribute}><p class="missing">${label}: file changed since this run (${h(media.path ?? "")} is not the file it recorded)</p></figure>`;
  }
  if (media.href === undefined) return `<figure${idAttribute}><p>${label}: —</p></figure>`;
  const src = h(media.href);
  const preview = previewOf(index, media);
  if (media.local && media.kind === "video") {
    return `<figure${idAttribute}>${videoLink(media, preview, media.href)}${caption(media, preview)}</figure>`;
  }
  if (media.local && media.kind === "image") {
    if (media.path !== undefined && index.inTile.has(media.path)) {
      return `<figure${idAttribute}>${caption(media, preview, " <span class='note'>(the picture of the tile above)</span>")}</figure>`;
    }
    return (
      `<figure${idAttribute}><img src="${src}" alt="${label}" loading="lazy" decoding="async">` +
      `${caption(media, preview)}</figure>`
    );
  }
  // An output that was not downloaded (--no-download) is only linked: its URL expires.
  const note = media.local ? "" : " (not downloaded)";
  return `<figure${idAttribute}><p><a href="${src}">${label}</a>${note}</p></figure>`;
}

/** A remote URL as a tile shows it: its host and path (the query may be a credential). */
function remoteWhere(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return url;
  }
}

/**
 * A step input: a link to the earlier output it is, the copy the run captured (its
 * thumbnail, linking the copy, and the original URL), a local file, or a remote URL the
 * page never loads.
 */
function inputFigure(media: MediaRef, index: PageIndex): string {
  const label = h(mediaLabel(media));
  const produced =
    (media.path !== undefined ? index.outputs.get(media.path) : undefined) ??
    (media.url !== undefined ? index.outputs.get(media.url) : undefined);
  if (produced) {
    return `<figure class="ref"><p>${label}: <a href="#${produced.id}">${h(produced.label)}</a> (shown there)</p></figure>`;
  }
  if (media.captured && media.local && media.href !== undefined && media.url !== undefined) {
    const preview = previewOf(index, media);
    const original = `captured from <a href="${h(media.url)}" rel="noreferrer">${h(remoteWhere(media.url))}</a>`;
    return (
      `<figure class="captured"><a href="${h(media.href)}"><img src="${h(preview?.thumbnail ?? media.href)}" alt="${label}" loading="lazy" decoding="async"></a>` +
      `${caption(media, preview, ` · ${original}`)}</figure>`
    );
  }
  if (!media.captured && (media.local || media.missing || media.changed || media.url === undefined))
    return mediaFigure(media, index, undefined);
  const url = media.url ?? "";
  // A capture whose copy is gone or replaced since is as good as none: the URL is linked.
  const why = media.captured
    ? `captured copy ${media.missing ? "missing" : "changed since this run"} (${media.path ?? ""})`
    : `remote, not captured${media.captureError ? `: ${media.captureError}` : ""}`;
  return (
    `<figure><a class="remote-tile" href="${h(url)}" rel="noreferrer">` +
    `<span class="file-name">${h(remoteWhere(url))}</span><span>${h(why)}</span></a>` +
    `<figcaption>${label}</figcaption></figure>`
  );
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
  if (step.cost) rows.push(["cost", h(costText(step.cost))]);
  return `<dl class="facts">${rows.map(([name, value]) => `<dt>${name}</dt><dd>${value}</dd>`).join("")}</dl>`;
}

function stepSection(step: StepReport, index: PageIndex): string {
  const parts: string[] = [];
  const model = step.model ? ` <span class="model">${h(step.model)}</span>` : "";
  parts.push(`<h3><span class="step-id">${h(step.stepId)}</span> ${stepBadge(step)}${model}</h3>`);
  if (step.error) parts.push(`<pre class="error">${h(step.error)}</pre>`);
  for (const prompt of step.prompts) {
    parts.push(`<p class="prompt"><span class="label">${h(prompt.name)}</span>${h(prompt.text)}</p>`);
  }
  if (step.command) {
    parts.push(
      `<p class="params"><span class="label">command</span><code>${h(step.command.join(" "))}</code></p>`,
    );
  }
  if (step.inputs.length > 0) {
    const figures = step.inputs.map((media) => inputFigure(media, index)).join("");
    parts.push(`<div class="media inputs"><span class="label">input</span>${figures}</div>`);
  }
  if (step.parameters.length > 0) {
    const text = step.parameters.map((p) => `${h(p.name)}: <code>${h(p.value)}</code>`).join(" · ");
    parts.push(`<p class="params">${text}</p>`);
  }
  if (step.outputs.length > 0) {
    const figures = step.outputs
      .map((media) => mediaFigure(media, index, outputEntry(index, media)?.id))
      .join("");
    parts.push(`<div class="media outputs">${figures}</div>`);
  }
  parts.push(facts(step));
  if (step.stdout)
    parts.push(`<details><summary>stdout</summary><pre class="stdout">${h(step.stdout)}</pre></details>`);
  return (
    `<section class="step step-${step.group}" data-step="${h(step.address)}" data-state="${step.state}">` +
    `${parts.join("\n")}</section>`
  );
}

function outputEntry(index: PageIndex, media: MediaRef): { id: string; label: string } | undefined {
  return (
    (media.path !== undefined ? index.outputs.get(media.path) : undefined) ??
    (media.url !== undefined ? index.outputs.get(media.url) : undefined)
  );
}

/** The media a job's tile shows: the last step's first picture or video on disk. */
function headlineMedia(job: JobReport): MediaRef | undefined {
  for (const step of [...job.steps].reverse()) {
    const found = step.outputs.find(
      (media) => media.local && (media.kind === "image" || media.kind === "video"),
    );
    if (found) return found;
  }
  return undefined;
}

function tileThumb(job: JobReport, index: PageIndex): string {
  const media = headlineMedia(job);
  if (!media) {
    const outputs = job.steps.flatMap((step) => step.outputs);
    const text = outputs.some((output) => output.missing)
      ? "file missing"
      : outputs.some((output) => output.changed)
        ? "file changed"
        : outputs.length > 0
          ? "not downloaded"
          : job.status === "succeeded"
            ? "no picture"
            : job.status;
    return `<span class="thumb thumb-empty">${h(text)}</span>`;
  }
  const preview = previewOf(index, media);
  if (preview?.thumbnail !== undefined) {
    return `<span class="thumb"><img src="${h(preview.thumbnail)}" alt="" loading="lazy" decoding="async"></span>`;
  }
  if (media.kind === "image" && media.href !== undefined && media.path !== undefined) {
    // No thumbnail (no ffmpeg): the picture itself, shown here only.
    index.inTile.add(media.path);
    return `<span class="thumb"><img src="${h(media.href)}" alt="" loading="lazy" decoding="async"></span>`;
  }
  const facts = sizeAndDuration(media, preview).join(" · ");
  return (
    `<span class="thumb thumb-empty"><span class="play" aria-hidden="true">▶</span>` +
    `<span class="file-name">${h(fileName(media))}</span>${facts ? `<span>${facts}</span>` : ""}</span>`
  );
}

function jobCard(job: JobReport, anchor: string, index: PageIndex): string {
  const models = [...new Set(job.steps.map((step) => step.model).filter((m) => m !== undefined))];
  const tokens = models.map((model) => index.modelTokens.get(model)).join(" ");
  const chips = job.steps
    .map((step) => `<span class="chip chip-${step.group}" title="${h(step.state)}">${h(step.stepId)}</span>`)
    .join("");
  const failedStep = job.steps.find((step) => step.group === "failed" && step.error);
  const error = failedStep?.error
    ? `<span class="tile-error">${h(failedStep.stepId)}: ${h(firstLine(failedStep.error))}</span>`
    : "";
  // The thumbnail first: it decides whether the detail shows the picture again.
  const thumb = tileThumb(job, index);
  const steps = job.steps.map((step) => stepSection(step, index)).join("\n");
  return (
    `<article class="job job-${job.status}" id="${anchor}" data-job="${h(job.key)}" data-status="${job.status}" data-models="${tokens}">\n` +
    `<details><summary class="tile">${thumb}` +
    `<h2><span class="job-key">${h(job.key)}</span> <span class="badge badge-${job.status}">${job.status}</span>` +
    `${job.cost ? ` <span class="cost">${h(costText(job.cost))}</span>` : ""}</h2>` +
    `<span class="chips">${chips}</span>${error}</summary>\n` +
    `<div class="detail">\n${steps}\n</div></details>\n</article>`
  );
}

function filterRadio(name: string, id: string, label: string, count: number, checked = false): string {
  return (
    `<label><input type="radio" name="${name}" id="${id}"${checked ? " checked" : ""}> ` +
    `${h(label)} <span class="n">${count}</span></label>`
  );
}

function filters(report: RunReport, index: PageIndex): string {
  const byStatus = (status: JobStatus) => report.jobs.filter((job) => job.status === status).length;
  const states = [filterRadio("state", "state-all", "all", report.jobs.length, true)];
  for (const status of ["failed", "unfinished", "succeeded"] as const) {
    const n = byStatus(status);
    if (n > 0 || status === "failed") states.push(filterRadio("state", `state-${status}`, status, n));
  }
  const parts = [`<fieldset><legend>instances</legend>${states.join("")}</fieldset>`];
  if (index.modelTokens.size > 1) {
    const models = [filterRadio("model", "model-all", "all models", report.jobs.length, true)];
    for (const [model, token] of index.modelTokens) {
      const n = report.jobs.filter((job) => job.steps.some((step) => step.model === model)).length;
      models.push(filterRadio("model", `model-${token}`, model, n));
    }
    parts.push(`<fieldset><legend>model</legend>${models.join("")}</fieldset>`);
  }
  return `<form class="filters">${parts.join("")}</form>`;
}

function runHeader(report: RunReport, anchors: ReadonlyMap<string, string>, index: PageIndex): string {
  const { run, counts } = report;
  const meta = [
    `${h(run.kind)}${run.parentRunId ? ` of run <code>${h(run.parentRunId)}</code>` : ""}`,
    `<code>${h(run.workflowFile)}</code>`,
    run.emulator
      ? "<strong>against an emulator: test media, nothing billed</strong>"
      : `at ${h(run.apiOrigin ?? "an unrecorded API")}`,
    `started ${time(run.startedAt)}`,
    run.finishedAt !== undefined ? `finished ${time(run.finishedAt)}` : "not finished",
  ];
  if (run.elapsedMs !== undefined) meta.push(`elapsed ${formatDuration(run.elapsedMs)}`);
  if (run.cost) meta.push(`cost ${h(costText(run.cost))}`);
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
  const status = run.status === "succeeded" ? "succeeded" : run.status === "running" ? "running" : "failed";
  const parts = [
    `<h1>${h(run.workflow)} <span class="run-id">run ${h(run.id)}</span> ` +
      `<span class="badge badge-${status}">${h(run.status)}</span></h1>`,
    `<p class="meta">${meta.join(" · ")}</p>`,
    `<ul class="counts">${countItems.join("")}</ul>`,
    filters(report, index),
  ];
  if (report.failed.length > 0) {
    const items = report.failed.map((step) => {
      const anchor = anchors.get(step.job) ?? "";
      const error = step.error ? ` <span class="error-line">${h(firstLine(step.error))}</span>` : "";
      return `<li><a href="#${anchor}">${h(step.address)}</a> ${h(step.state)}${error}</li>`;
    });
    const open = report.failed.length <= OPEN_FAILURE_LIST_LIMIT ? " open" : "";
    parts.push(
      `<section class="failures"><details${open}><summary><h2>Failed steps (${report.failed.length})</h2></summary>` +
        `<ol>${items.join("")}</ol></details>`,
    );
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

function pageIndex(report: RunReport, previews: MediaPreviews): PageIndex {
  const outputs = new Map<string, { id: string; label: string }>();
  const modelTokens = new Map<string, string>();
  let n = 0;
  for (const step of report.jobs.flatMap((job) => job.steps)) {
    if (step.model !== undefined && !modelTokens.has(step.model)) {
      modelTokens.set(step.model, `m${modelTokens.size + 1}`);
    }
    for (const media of step.outputs) {
      const entry = { id: `media-${++n}`, label: `${step.address} · ${mediaLabel(media)}` };
      if (media.path !== undefined) outputs.set(media.path, entry);
      if (media.url !== undefined) outputs.set(media.url, entry);
    }
  }
  return { previews, outputs, inTile: new Set(), modelTokens };
}

export function renderReportHtml(report: RunReport, options: HtmlReportOptions = {}): string {
  const index = pageIndex(report, options.previews ?? new Map());
  const anchors = new Map(report.jobs.map((job, i) => [job.key, `job-${i + 1}`]));
  const ordered = [...report.jobs].sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status]);
  const cards = ordered.map((job) => jobCard(job, anchors.get(job.key) ?? "", index));
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
<style>${REPORT_CSS}${modelFilterCss([...index.modelTokens.values()])}</style>
</head>
<body${bodyClass}>
${runHeader(report, anchors, index)}
<p class="empty-filter">No job failed.</p>
<main class="gallery">
${cards.join("\n")}
</main>
<footer>Generated by runflow at ${time(report.generatedAt)}. Nothing is fetched from the network: the videos and pictures are the downloaded files beside this page, linked relative to it (keep the folders together), and the thumbnails are in <code>thumbnails/</code> beside it.</footer>
<script>${REPORT_SCRIPT}</script>
</body>
</html>
`;
}
