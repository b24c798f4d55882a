import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildRunReport, EAGER_VIDEO_LIMIT, renderReportHtml, type RunReport } from "../src/report/index.js";
import { openSqliteStore } from "../src/store/index.js";
import { HOSTILE_PROMPT, RUN_ID, seedReportRun, T0 } from "./report-fixture.js";

function htmlOf(): { html: string; report: RunReport } {
  const seeded = seedReportRun();
  const store = openSqliteStore(seeded.statePath, { readonly: true });
  try {
    const run = store.getRun(RUN_ID);
    if (!run) throw new Error("seeded run missing");
    const report = buildRunReport(run, store.getSteps(RUN_ID), store.getOutputs(RUN_ID), {
      reportDir: path.join(seeded.root, "reports"),
      now: T0,
    });
    return { html: renderReportHtml(report), report };
  } finally {
    store.close();
  }
}

describe("renderReportHtml", () => {
  it("escapes every value from the run: a prompt's <script> is text, and the page's own script is the only one", () => {
    const { html } = htmlOf();
    expect(html).not.toContain(HOSTILE_PROMPT);
    expect(html).toContain(
      "A cat &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; a | pipe, *stars* and [a](javascript:alert(1))",
    );
    expect(html).toContain("refused &lt;b&gt;twice&lt;/b&gt;");
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).not.toMatch(/href="javascript:/i);
  });

  it("is one self-contained file: inline style and script, media by relative path, nothing fetched but media", () => {
    const { html } = htmlOf();
    expect(html).not.toMatch(/<link\b|@import|<iframe|<object|<embed/i);
    expect(html).toMatch(
      /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-/,
    );
    const sources = [...html.matchAll(/\bsrc="([^"]*)"/g)].map((match) => match[1]);
    expect(sources).toContain("../outputs/teasers/001/restyle.mp4");
    expect(sources).toContain("../outputs/posters/001/still.png");
    // Only the source stills, which runflow never downloads, come from elsewhere.
    expect(sources.filter((src) => /^[a-z]+:/i.test(src ?? ""))).toEqual([
      "https://images.example.com/stills/001.png",
      "https://images.example.com/stills/002.png",
      "https://images.example.com/stills/003.png",
    ]);
    expect(html).not.toMatch(/base64,/);
  });

  it("plays every output video with controls and marks failed jobs and steps with a class and a badge", () => {
    const { html } = htmlOf();
    // Three outputs, and two restyle sources shown from the animate step's download.
    expect(html.match(/<video controls[^>]*preload="metadata"/g)).toHaveLength(5);
    expect(html.match(/<article class="job job-failed"/g)).toHaveLength(2);
    expect(html).toContain('<span class="badge badge-failed">failed</span>');
    expect(html).toMatch(
      /<section class="step step-failed" data-step="teaser\/002\/restyle" data-state="failed">/,
    );
    expect(html).toContain('<input type="checkbox" id="failed-only"> show failed only (2 of 4 instances)');
    expect(html).toContain("<code>runflow retry r-20250301-0200-ab12</code>");
  });

  it("lets a page with many videos load each one only when played", () => {
    const { report } = htmlOf();
    const job = report.jobs[0];
    if (!job) throw new Error("no job");
    const many: RunReport = {
      ...report,
      jobs: Array.from({ length: EAGER_VIDEO_LIMIT }, (_, i) => ({ ...job, key: `teaser/${i}` })),
    };
    const html = renderReportHtml(many);
    expect(html).not.toContain('preload="metadata"');
    expect(html).toContain('preload="none"');
  });
});
