/**
 * The CSS and the one script of the HTML report, inlined into every page: the report is a
 * single file that needs no server, no network and no other asset.
 */
import { createHash } from "node:crypto";

export const REPORT_CSS = `
:root { color-scheme: light; --ok: #1a7f37; --fail: #cf222e; --busy: #9a6700; --reuse: #0969da;
  --line: #d0d7de; --muted: #57606a; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: var(--bg); }
header.run { padding: 16px 24px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 22px; }
h1 .run-id { color: var(--muted); font-weight: normal; font-size: 15px; }
.meta { margin: 0 0 10px; color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 10px; padding: 0; list-style: none; }
.counts li { padding: 4px 10px; border: 1px solid var(--line); border-radius: 14px; background: var(--bg); }
.counts .n { font-weight: 600; font-variant-numeric: tabular-nums; }
.counts .group-failed.nonzero { border-color: var(--fail); color: var(--fail); }
.counts .group-done.nonzero { border-color: var(--ok); }
.filter { display: inline-flex; align-items: center; gap: 6px; font-weight: 600; cursor: pointer; }
.failures { margin-top: 12px; }
.failures h2 { font-size: 15px; margin: 0 0 4px; color: var(--fail); }
.failures ol { margin: 0 0 8px; padding-left: 20px; }
.failures .error-line { color: var(--muted); }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 16px; padding: 16px 24px; }
.job { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.job.job-failed { border: 2px solid var(--fail); }
.job > h2 { display: flex; justify-content: space-between; align-items: center; gap: 8px; margin: 0;
  padding: 8px 12px; font-size: 15px; background: var(--bg); border-bottom: 1px solid var(--line); word-break: break-all; }
.badge { flex: none; padding: 1px 8px; border-radius: 10px; font-size: 11px; font-weight: 700; text-transform: uppercase;
  letter-spacing: .04em; color: #fff; background: var(--muted); }
.badge-succeeded, .badge-done { background: var(--ok); }
.badge-failed { background: var(--fail); }
.badge-reused { background: var(--reuse); }
.badge-running, .badge-submitted, .badge-unfinished { background: var(--busy); }
.step { padding: 10px 12px; border-top: 1px solid var(--line); }
.job > h2 + .step { border-top: 0; }
.step.step-failed { background: #fff5f5; border-left: 4px solid var(--fail); }
.step h3 { display: flex; align-items: center; gap: 8px; margin: 0 0 6px; font-size: 14px; }
.step h3 .model { color: var(--muted); font-weight: normal; font-size: 12px; word-break: break-all; }
.prompt { margin: 0 0 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
.label { display: inline-block; margin-right: 4px; color: var(--muted); font-size: 11px; text-transform: uppercase; }
.media { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
.media figure { margin: 0; flex: 1 1 160px; max-width: 100%; }
.media img, .media video { display: block; width: 100%; max-height: 260px; object-fit: contain; background: #000; border-radius: 4px; }
.media figcaption { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.media .missing { color: var(--fail); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; margin: 6px 0 0; font-size: 12px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.params { margin: 4px 0; font-size: 12px; overflow-wrap: anywhere; }
pre.error { margin: 8px 0 0; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; color: var(--fail);
  background: #fff; border: 1px solid #ffcecb; border-radius: 4px; }
pre.stdout { margin: 6px 0 0; padding: 8px; white-space: pre-wrap; max-height: 160px; overflow: auto; background: var(--bg); }
footer { padding: 8px 24px 24px; color: var(--muted); font-size: 12px; }
body.failed-only .job:not(.job-failed) { display: none; }
.empty-filter { display: none; padding: 0 24px; color: var(--muted); }
body.failed-only.no-failures .empty-filter { display: block; }
`;

/**
 * The "show failed only" filter (also opened by `#failed` in the address) and local times in
 * tooltips. Everything else works without script.
 */
export const REPORT_SCRIPT = `(() => {
  const toggle = document.getElementById("failed-only");
  const apply = () => document.body.classList.toggle("failed-only", toggle.checked);
  if (location.hash === "#failed") toggle.checked = true;
  toggle.addEventListener("change", apply);
  apply();
  for (const time of document.querySelectorAll("time[datetime]")) {
    time.title = new Date(time.dateTime).toLocaleString();
  }
})();`;

/**
 * The page allows no script but the one above (by hash), no remote styles and no network
 * requests other than media: a prompt that slipped past escaping still could not run.
 */
export function contentSecurityPolicy(): string {
  const scriptHash = createHash("sha256").update(REPORT_SCRIPT).digest("base64");
  return [
    "default-src 'none'",
    `script-src 'sha256-${scriptHash}'`,
    "style-src 'unsafe-inline'",
    "img-src file: http: https: data:",
    "media-src file: http: https:",
  ].join("; ");
}
