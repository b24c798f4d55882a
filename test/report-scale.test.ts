/**
 * A night of work: the HTML report of a 1,000-job run (about 1,900 real MP4s on disk) made
 * with the real ffmpeg and opened in headless Chromium. It measures and bounds what a
 * creator meets: the page's load time, its height per row of the gallery, no blank player,
 * each file referenced once, failed jobs first, the filters — and a second report that
 * makes no thumbnail at all. The measurements are printed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runReportCommand, type WrittenReport } from "../src/cli/commands/report.js";
import { launchChromium, skipWithoutChromium } from "./helpers/chromium.js";
import { LARGE_RUN_ID, seedLargeRun, type SeededRun } from "./report-fixture.js";

const JOBS = 1_000;
/** Distinct video contents: enough to exercise ffmpeg in parallel, few enough to keep the test short. */
const DISTINCT_VIDEOS = 16;
/** Failed: every 25th job's animate (40) and every 10th job's restyle unless its animate failed (80). */
const FAILED_JOBS = 120;
/** Generous bounds: a slow shared CI machine must pass, a page that regresses to 2,000 px a job must not. */
const MAX_LOAD_MS = 8_000;
const MAX_PX_PER_ROW = 400;

const skip = skipWithoutChromium("report-scale") || (!existsSync("/usr/bin/ffmpeg") && !process.env.CI);

describe.skipIf(skip)(`the HTML report of a ${JOBS}-job run`, () => {
  let root: string;
  let seeded: SeededRun;
  let written: WrittenReport;
  let generateMs: number;
  let browser: Browser;
  let page: Page;
  let html: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), "runflow-report-scale-"));
    seeded = seedLargeRun({ jobs: JOBS, distinctVideos: DISTINCT_VIDEOS, root });
    const started = performance.now();
    written = await runReportCommand(
      LARGE_RUN_ID,
      { statePath: seeded.statePath, quiet: true },
      { stdout: () => {}, stderr: () => {} },
    );
    generateMs = performance.now() - started;
    html = readFileSync(written.path ?? "", "utf8");
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (root && !process.env.KEEP_REPORT) rmSync(root, { recursive: true, force: true });
  });

  it("makes one thumbnail per distinct video, and a second report makes none", async () => {
    expect(written.thumbnails).toMatchObject({ made: DISTINCT_VIDEOS, failed: 0, ffmpegAbsent: false });
    const started = performance.now();
    const again = await runReportCommand(
      LARGE_RUN_ID,
      { statePath: seeded.statePath, quiet: true },
      { stdout: () => {}, stderr: () => {} },
    );
    const secondMs = performance.now() - started;
    expect(again.thumbnails).toMatchObject({ made: 0, cached: DISTINCT_VIDEOS });
    expect(readFileSync(again.path ?? "", "utf8").length).toBe(html.length);
    console.log(
      `report-scale: ${JOBS} jobs, ${seeded.files.length} videos: report written in ${Math.round(generateMs)} ms ` +
        `(${DISTINCT_VIDEOS} thumbnails made), again in ${Math.round(secondMs)} ms (all cached); ` +
        `${Math.round(html.length / 1024)} KiB of HTML`,
    );
  });

  it("loads fast in Chromium, with a compact grid: bounded height per row", async () => {
    await page.goto(pathToFileURL(written.path ?? "").href, { waitUntil: "load" });
    const timing = await page.evaluate<{ domContentLoaded: number; load: number }>(
      `(() => { const n = performance.getEntriesByType("navigation")[0];
        return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd }; })()`,
    );
    const layout = await page.evaluate<{ height: number; rows: number; jobs: number }>(
      `(() => { const jobs = [...document.querySelectorAll("article.job")];
        return { height: document.documentElement.scrollHeight, jobs: jobs.length,
          rows: new Set(jobs.map((a) => a.offsetTop)).size }; })()`,
    );
    console.log(
      `report-scale: DOMContentLoaded ${Math.round(timing.domContentLoaded)} ms, load ${Math.round(timing.load)} ms; ` +
        `page ${layout.height} px for ${layout.jobs} jobs in ${layout.rows} rows ` +
        `(${Math.round(layout.height / layout.rows)} px a row)`,
    );
    expect(layout.jobs).toBe(JOBS);
    expect(timing.load).toBeLessThan(MAX_LOAD_MS);
    expect(layout.height / layout.rows).toBeLessThan(MAX_PX_PER_ROW);
    await page.screenshot({ path: "/tmp/report-scale.png" });
  });

  it("has no blank player: every video is its poster frame until played, and the page holds no <video>", async () => {
    const players = await page.evaluate<{ videos: number; players: number; withPoster: number }>(
      `(() => { const players = [...document.querySelectorAll("a.player")];
        return { videos: document.querySelectorAll("video").length, players: players.length,
          withPoster: players.filter((a) => a.querySelector("img[src^='thumbnails/']")).length }; })()`,
    );
    expect(players).toEqual({ videos: 0, players: seeded.files.length, withPoster: seeded.files.length });
    // The tiles in view show their poster frames.
    await expect
      .poll(() =>
        page.evaluate<boolean>(
          `[...document.querySelectorAll(".thumb img")].slice(0, 10).every((img) => img.complete && img.naturalWidth === 320)`,
        ),
      )
      .toBe(true);
  });

  it("references each downloaded file exactly once", () => {
    const references = new Map<string, number>();
    for (const match of html.matchAll(/\b(?:src|href)="(\.\.\/outputs\/[^"]*)"/g)) {
      references.set(match[1] ?? "", (references.get(match[1] ?? "") ?? 0) + 1);
    }
    const expected = seeded.files.map((file) => path.relative(path.dirname(written.path ?? ""), file));
    expect([...references.keys()].sort()).toEqual(expected.sort());
    expect([...references.values()].every((count) => count === 1)).toBe(true);
  });

  it("lists the failed jobs first, and filters by state and by model", async () => {
    const statuses = await page.evaluate<string[]>(
      `[...document.querySelectorAll("article.job")].map((a) => a.dataset.status)`,
    );
    expect(statuses.slice(0, FAILED_JOBS).every((status) => status === "failed")).toBe(true);
    expect(statuses.slice(FAILED_JOBS).every((status) => status === "succeeded")).toBe(true);
    const visible = `[...document.querySelectorAll("article.job")].filter((a) => a.offsetParent !== null).length`;
    await page.click("#state-failed");
    expect(await page.evaluate<number>(visible)).toBe(FAILED_JOBS);
    await page.click("#state-all");
    // Models are numbered in plan order: m1 Hailuo, m2 Aleph, m3 Kling (every second job's animate).
    await page.click("#model-m3");
    expect(await page.evaluate<number>(visible)).toBe(JOBS / 2);
    await page.click("#model-all");
    expect(await page.evaluate<number>(visible)).toBe(JOBS);
  });
});
