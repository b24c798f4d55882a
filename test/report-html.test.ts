import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildRunReport, renderReportHtml, type RunReport } from "../src/report/index.js";
import { openSqliteStore } from "../src/store/index.js";
import { gradientPng, HOSTILE_PROMPT, RUN_ID, seedReportRun, T0 } from "./report-fixture.js";

function htmlOf(fileExists?: (file: string) => boolean): { html: string; report: RunReport } {
  const seeded = seedReportRun();
  const store = openSqliteStore(seeded.statePath, { readonly: true });
  try {
    const run = store.getRun(RUN_ID);
    if (!run) throw new Error("seeded run missing");
    const report = buildRunReport(run, store.getSteps(RUN_ID), store.getOutputs(RUN_ID), {
      reportDir: path.join(seeded.root, "reports"),
      now: T0,
      fileExists,
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

  it("fetches nothing from the network: inline style and script, media by relative path, remote inputs only linked", () => {
    const { html } = htmlOf();
    expect(html).not.toMatch(/<link\b|@import|<iframe|<object|<embed/i);
    expect(html).toMatch(
      /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-[^"]*img-src 'self' file: data:; media-src 'self' file:"/,
    );
    const sources = [...html.matchAll(/\b(?:src|poster)="([^"]*)"/g)].map((match) => match[1]);
    expect(sources).toContain("../outputs/posters/001/still.png");
    expect(sources.filter((src) => /^[a-z]+:/i.test(src ?? ""))).toEqual([]);
    // A source still on the user's media host is a tile that says so, linking to it.
    expect(html).toContain(
      '<a class="remote-tile" href="https://images.example.com/stills/001.png" rel="noreferrer">' +
        '<span class="file-name">images.example.com/stills/001.png</span><span>remote, not captured</span></a>',
    );
    expect(html).not.toMatch(/base64,/);
  });

  it("shows a still the run captured from its copy, linking the URL it came from; a failed capture says why, a deleted copy that it is missing", () => {
    const seeded = seedReportRun();
    const copy = path.join(
      seeded.root,
      "outputs",
      "teasers",
      "001",
      ".runs",
      RUN_ID,
      ".inputs",
      "image_url-1.png",
    );
    mkdirSync(path.dirname(copy), { recursive: true });
    writeFileSync(copy, gradientPng(8, 8));
    const store = openSqliteStore(seeded.statePath, { readonly: true });
    let html: string;
    try {
      const run = store.getRun(RUN_ID);
      if (!run) throw new Error("seeded run missing");
      const captured = { runId: RUN_ID, address: "teaser/001/animate", sha256: undefined, createdAt: T0 };
      const report = buildRunReport(run, store.getSteps(RUN_ID), store.getOutputs(RUN_ID), {
        reportDir: path.join(seeded.root, "reports"),
        now: T0,
        captures: [
          {
            ...captured,
            url: "https://images.example.com/stills/001.png",
            path: copy,
            bytes: 10,
            error: undefined,
          },
          {
            ...captured,
            url: "https://images.example.com/stills/002.png",
            path: undefined,
            bytes: undefined,
            error: "https://images.example.com/stills/002.png: the file host answered text/html <b>",
          },
          // Captured, then deleted from disk.
          {
            ...captured,
            url: "https://images.example.com/stills/003.png",
            path: `${copy}.gone`,
            bytes: 10,
            error: undefined,
          },
        ],
        fileExists: existsSync,
      });
      html = renderReportHtml(report);
    } finally {
      store.close();
    }
    expect(html).toContain(
      '<figure class="captured"><a href="../outputs/teasers/001/.runs/r-20250301-0200-ab12/.inputs/image_url-1.png">' +
        '<img src="../outputs/teasers/001/.runs/r-20250301-0200-ab12/.inputs/image_url-1.png" alt="image_url"',
    );
    expect(html).toContain(
      'captured from <a href="https://images.example.com/stills/001.png" rel="noreferrer">images.example.com/stills/001.png</a>',
    );
    expect(html).not.toContain('<span class="file-name">images.example.com/stills/001.png</span>');
    expect(html).toContain(
      "<span>remote, not captured: https://images.example.com/stills/002.png: the file host answered text/html &lt;b&gt;</span>",
    );
    expect(html).toContain(
      `<span class="file-name">images.example.com/stills/003.png</span><span>captured copy missing (${copy}.gone)</span>`,
    );
  });

  it("lists failed jobs first, then the rest in plan order, each a tile whose detail unfolds on demand", () => {
    const { html } = htmlOf();
    const jobs = [...html.matchAll(/<article class="job job-(\w+)" id="(job-\d+)" data-job="([^"]*)"/g)].map(
      (match) => `${match[3]} ${match[2]} ${match[1]}`,
    );
    expect(jobs).toEqual([
      "teaser/002 job-2 failed",
      "teaser/003 job-3 failed",
      "teaser/001 job-1 succeeded",
      "poster/001 job-4 succeeded",
    ]);
    expect(html.match(/<details><summary class="tile">/g)).toHaveLength(4);
    expect(html).toContain(
      '<span class="tile-error">restyle: content policy: the prompt was refused &lt;b&gt;twice&lt;/b&gt;</span>',
    );
  });

  it("shows each file once: a chained step's source video links to the output it is", () => {
    const { html } = htmlOf();
    const references = [...html.matchAll(/\b(?:src|href)="(\.\.\/outputs\/[^"]*)"/g)].map(
      (match) => match[1],
    );
    const counts = new Map<string, number>();
    for (const ref of references) counts.set(ref ?? "", (counts.get(ref ?? "") ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({
      "../outputs/teasers/001/animate.mp4": 1,
      "../outputs/teasers/001/restyle.mp4": 1,
      "../outputs/teasers/002/animate.mp4": 1,
      "../outputs/posters/001/still.png": 1,
      "../outputs/posters/001/framed.png": 1,
    });
    const animate =
      /<figure id="(media-\d+)"><a class="player video-tile" href="\.\.\/outputs\/teasers\/002\/animate\.mp4"/.exec(
        html,
      );
    expect(animate).not.toBeNull();
    expect(html).toContain(
      `video_url: <a href="#${animate?.[1]}">teaser/002/animate · video</a> (shown there)`,
    );
  });

  it("shows every video as its poster frame linking to the file, or as a tile without a poster: never a blank player", () => {
    const { html, report } = htmlOf();
    // No <video> in the page: a click makes one (the page's script).
    expect(html).not.toContain("<video");
    // No thumbnails (no ffmpeg): a tile per output video, with its name, duration and size.
    expect(html.match(/<a class="player video-tile"/g)).toHaveLength(3);
    const previews = new Map(
      report.jobs
        .flatMap((job) => job.steps.flatMap((step) => step.outputs))
        .filter((media) => media.path !== undefined)
        .map((media) => [
          media.path ?? "",
          { thumbnail: `thumbnails/${media.name}.jpg`, durationMs: undefined },
        ]),
    );
    const withPosters = renderReportHtml(report, { previews });
    expect(withPosters).not.toContain('class="player video-tile"');
    expect(withPosters).toContain(
      '<a class="player" href="../outputs/teasers/001/restyle.mp4"><img src="thumbnails/video.jpg" alt="video" loading="lazy" decoding="async">',
    );
    expect(
      withPosters.match(/<a class="player" href="[^"]*"><img src="thumbnails\/video\.jpg"/g),
    ).toHaveLength(3);
    // The tiles show the thumbnails, lazily.
    expect(withPosters).toContain(
      '<span class="thumb"><img src="thumbnails/video.jpg" alt="" loading="lazy"',
    );
  });

  it("filters jobs by state and by model with radio buttons and CSS alone", () => {
    const { html } = htmlOf();
    expect(html).toContain(
      '<input type="radio" name="state" id="state-all" checked> all <span class="n">4</span>',
    );
    expect(html).toContain(
      '<input type="radio" name="state" id="state-failed"> failed <span class="n">2</span>',
    );
    expect(html).toContain(
      '<input type="radio" name="model" id="model-m1"> minimax/Hailuo Video 01 Live <span class="n">3</span>',
    );
    expect(html).toContain('data-job="teaser/001" data-status="succeeded" data-models="m1 m2"');
    expect(html).toContain('body:has(#model-m3:checked) .job:not([data-models~="m3"]) { display: none; }');
    expect(html).toContain("<code>runflow retry r-20250301-0200-ab12</code>");
  });

  it("says on a tile why it has no picture: the downloads are gone from disk", () => {
    const { html } = htmlOf((file) => !file.includes(`${path.sep}teasers${path.sep}001${path.sep}`));
    expect(html).toMatch(
      /data-job="teaser\/001"[^>]*>\n<details><summary class="tile"><span class="thumb thumb-empty">file missing<\/span>/,
    );
    expect(html).toContain('<p class="missing">video: file missing (');
  });
});
