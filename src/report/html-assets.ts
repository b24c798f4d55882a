/**
 * The CSS and the one script of the HTML report, inlined into every page: the report needs
 * no server, no network and no asset of its own — only the media files it links beside it.
 */
import { createHash } from "node:crypto";

export const REPORT_CSS = `
:root { color-scheme: light; --ok: #1a7f37; --fail: #cf222e; --busy: #9a6700; --reuse: #0969da;
  --line: #d0d7de; --muted: #57606a; --bg: #f6f8fa; --tile: #e8ebef; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: var(--bg); }
header.run { padding: 16px 24px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 22px; }
h1 .run-id { color: var(--muted); font-weight: normal; font-size: 15px; }
.meta { margin: 0 0 10px; color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 10px; padding: 0; list-style: none; }
.counts li { padding: 4px 10px; border: 1px solid var(--line); border-radius: 14px; background: var(--bg); }
.n { font-weight: 600; font-variant-numeric: tabular-nums; }
.counts .group-failed.nonzero { border-color: var(--fail); color: var(--fail); }
.counts .group-done.nonzero { border-color: var(--ok); }
.filters { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 0; }
.filters fieldset { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 12px; margin: 0; padding: 0; border: 0; }
.filters legend { float: left; margin-right: 4px; color: var(--muted); font-size: 11px; text-transform: uppercase; }
.filters label { display: inline-flex; align-items: center; gap: 4px; cursor: pointer; }
.failures { margin-top: 12px; }
.failures summary { cursor: pointer; }
.failures h2 { display: inline; font-size: 15px; margin: 0; color: var(--fail); }
.failures ol { margin: 4px 0 8px; padding-left: 20px; }
.failures .error-line { color: var(--muted); }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; padding: 16px 24px; align-items: start; }
.job { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.job.job-failed { border: 2px solid var(--fail); }
.job:target { outline: 3px solid var(--reuse); }
.job:has(> details[open]) { grid-column: 1 / -1; }
.job > details[open] > .tile { display: grid; grid-template-columns: 240px 1fr; grid-template-rows: auto auto 1fr; column-gap: 4px; }
.job > details[open] > .tile .thumb { grid-row: 1 / span 3; }
.tile { display: block; cursor: pointer; list-style: none; }
.tile::-webkit-details-marker { display: none; }
.thumb { display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 2px;
  aspect-ratio: 16 / 9; overflow: hidden; background: #111; color: #fff; font-size: 12px; text-align: center; padding: 0; }
.thumb img { display: block; width: 100%; height: 100%; object-fit: contain; }
.thumb-empty { background: var(--tile); color: var(--muted); padding: 8px; overflow-wrap: anywhere; }
.play { font-size: 22px; line-height: 1; }
.tile h2 { display: flex; justify-content: space-between; align-items: center; gap: 8px; margin: 0;
  padding: 6px 10px 2px; font-size: 13px; word-break: break-all; }
.chips { display: flex; flex-wrap: wrap; gap: 4px; padding: 2px 10px 8px; }
.chip { padding: 0 6px; border-radius: 8px; font-size: 11px; background: var(--tile); border-left: 3px solid var(--muted); }
.chip-done { border-left-color: var(--ok); }
.chip-reused { border-left-color: var(--reuse); }
.chip-failed { border-left-color: var(--fail); color: var(--fail); }
.chip-running, .chip-submitted { border-left-color: var(--busy); }
.tile-error { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 2; overflow: hidden;
  margin: -4px 10px 8px; color: var(--fail); font-size: 12px; overflow-wrap: anywhere; }
.detail { border-top: 1px solid var(--line); }
.badge { flex: none; padding: 1px 8px; border-radius: 10px; font-size: 11px; font-weight: 700; text-transform: uppercase;
  letter-spacing: .04em; color: #fff; background: var(--muted); }
.badge-succeeded, .badge-done { background: var(--ok); }
.badge-failed { background: var(--fail); }
.badge-reused { background: var(--reuse); }
.badge-running, .badge-submitted, .badge-unfinished { background: var(--busy); }
.step { padding: 10px 12px; border-top: 1px solid var(--line); }
.detail > .step:first-child { border-top: 0; }
.step.step-failed { background: #fff5f5; border-left: 4px solid var(--fail); }
.step h3 { display: flex; align-items: center; gap: 8px; margin: 0 0 6px; font-size: 14px; }
.step h3 .model { color: var(--muted); font-weight: normal; font-size: 12px; word-break: break-all; }
.prompt { margin: 0 0 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
.label { display: inline-block; margin-right: 4px; color: var(--muted); font-size: 11px; text-transform: uppercase; }
.media { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
.media figure { margin: 0; flex: 0 1 360px; max-width: 100%; }
.media img, .media video { display: block; width: 100%; max-height: 360px; object-fit: contain; background: #000; border-radius: 4px; }
.media figcaption { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.media .missing { color: var(--fail); }
.media .ref p { margin: 0; font-size: 12px; }
.player { position: relative; display: block; }
.player img { aspect-ratio: 16 / 9; }
.player .play { position: absolute; left: 50%; top: 50%; transform: translate(-50%, -50%); padding: 8px 12px;
  border-radius: 50%; background: rgba(0, 0, 0, .55); color: #fff; }
.video-tile .play { position: static; transform: none; background: none; color: inherit; }
.video-tile, .remote-tile { display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 2px;
  aspect-ratio: 16 / 9; max-height: 200px; padding: 8px; border-radius: 4px; background: var(--tile); color: var(--muted);
  font-size: 12px; text-align: center; text-decoration: none; overflow-wrap: anywhere; }
.file-name { color: #1f2328; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; margin: 6px 0 0; font-size: 12px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.params { margin: 4px 0; font-size: 12px; overflow-wrap: anywhere; }
pre.error { margin: 0 0 8px; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; color: var(--fail);
  background: #fff; border: 1px solid #ffcecb; border-radius: 4px; }
pre.stdout { margin: 6px 0 0; padding: 8px; white-space: pre-wrap; max-height: 160px; overflow: auto; background: var(--bg); }
footer { padding: 8px 24px 24px; color: var(--muted); font-size: 12px; }
body:has(#state-failed:checked) .job:not(.job-failed),
body:has(#state-unfinished:checked) .job:not(.job-unfinished),
body:has(#state-succeeded:checked) .job:not(.job-succeeded) { display: none; }
.empty-filter { display: none; padding: 0 24px; color: var(--muted); }
body.no-failures:has(#state-failed:checked) .empty-filter { display: block; }
`;

/**
 * The model filter's rules, one per model of the run: tokens (`m1` …), never model names,
 * so no user text reaches the style sheet. Like the state filter, it needs no script.
 */
export function modelFilterCss(tokens: readonly string[]): string {
  return tokens
    .map(
      (token) => `body:has(#model-${token}:checked) .job:not([data-models~="${token}"]) { display: none; }\n`,
    )
    .join("");
}

/**
 * The filters and the details are plain HTML and CSS and work without script. The script
 * turns a clicked poster into a player (without it the link opens the video file), opens
 * the filter on failed jobs for `#failed` in the address, unfolds a job a link points at
 * (`#job-3`), and shows local times in tooltips.
 */
export const REPORT_SCRIPT = `(() => {
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element && event.target.closest("a.player");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const video = document.createElement("video");
    const poster = link.querySelector("img");
    if (poster) video.poster = poster.getAttribute("src");
    video.controls = true;
    video.autoplay = true;
    video.playsInline = true;
    video.src = link.getAttribute("href");
    link.replaceWith(video);
  });
  const openTarget = () => {
    if (location.hash === "#failed") {
      const failed = document.getElementById("state-failed");
      if (failed) failed.checked = true;
      return;
    }
    const target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
    const details = target && target.matches("article.job") && target.querySelector(":scope > details");
    if (details) details.open = true;
  };
  addEventListener("hashchange", openTarget);
  openTarget();
  for (const time of document.querySelectorAll("time[datetime]")) {
    time.title = new Date(time.dateTime).toLocaleString();
  }
})();`;

/**
 * The page allows no script but the one above (by hash), no remote styles and no network
 * request at all (media come from the files beside the report): a prompt that slipped
 * past escaping still could not run or send anything anywhere.
 */
export function contentSecurityPolicy(): string {
  const scriptHash = createHash("sha256").update(REPORT_SCRIPT).digest("base64");
  return [
    "default-src 'none'",
    `script-src 'sha256-${scriptHash}'`,
    "style-src 'unsafe-inline'",
    // The page's own files only: no input or output is ever fetched from the network.
    "img-src 'self' file: data:",
    "media-src 'self' file:",
  ].join("; ");
}
