/**
 * The HTML report opened from disk in a real headless Chromium (Debian's `chromium`, driven
 * by playwright-core): a tile per job, failed jobs first, posters made by the real ffmpeg,
 * players that play the downloaded files once unfolded, the filters with and without
 * script, and not one request to the network. A screenshot goes to /tmp/report.png.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runReportCommand } from "../src/cli/commands/report.js";
import { launchChromium, skipWithoutChromium } from "./helpers/chromium.js";
import { gradientPng, RUN_ID, seedReportRun } from "./report-fixture.js";

const SCREENSHOT = "/tmp/report.png";
// The poster frames are ffmpeg's: without it (and outside CI) there is nothing to check here.
const skip = skipWithoutChromium("report-browser") || (!existsSync("/usr/bin/ffmpeg") && !process.env.CI);

const visibleJobs = `[...document.querySelectorAll("article.job")]
  .filter((a) => getComputedStyle(a).display !== "none").map((a) => a.dataset.job)`;

/**
 * Waits until an expression is true in the page. (waitForFunction would evaluate a string
 * with eval, which the report's CSP forbids; page.evaluate goes through the debugger.)
 */
async function until(page: Page, expression: string): Promise<void> {
  await expect.poll(() => page.evaluate<boolean>(expression), { timeout: 15_000 }).toBe(true);
}

describe.skipIf(skip)("the HTML report in headless Chromium", () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let reportUrl: string;
  let root: string | undefined;
  /** Requests the page made to the media host its source stills live on. */
  let hostRequests = 0;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    // The source stills live on a media host, as in production: here a loopback server. The
    // page must never ask it for anything.
    const still = gradientPng(120, 80);
    server = createServer((_request, response) => {
      hostRequests += 1;
      response.writeHead(200, { "content-type": "image/png", "content-length": still.length });
      response.end(still);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    root = mkdtempSync(path.join(os.tmpdir(), "runflow-report-browser-"));
    const seeded = seedReportRun({ imageHost: `http://127.0.0.1:${port}`, root });
    const written = await runReportCommand(
      RUN_ID,
      { statePath: seeded.statePath, quiet: true },
      { stdout: () => {}, stderr: () => {} },
    );
    reportUrl = pathToFileURL(written.path ?? "").href;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    await page.goto(reportUrl);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("shows a tile for every job instance, failed jobs first, with its counts at the top", async () => {
    expect(
      await page.evaluate<string[]>(
        `[...document.querySelectorAll("article.job")].map((a) => a.dataset.job)`,
      ),
    ).toEqual(["teaser/002", "teaser/003", "teaser/001", "poster/001"]);
    expect(await page.evaluate<string>(`document.querySelector(".counts").innerText`)).toMatch(
      /4\s*succeeded/,
    );
  });

  it("shows each tile's poster frame, made by ffmpeg from the job's last output", async () => {
    await until(page, `[...document.querySelectorAll(".thumb img")].every((img) => img.complete)`);
    const thumbs = await page.evaluate<{ job: string; width: number }[]>(
      `[...document.querySelectorAll("article.job")].map((a) => ({ job: a.dataset.job,
        width: a.querySelector(".thumb img") ? a.querySelector(".thumb img").naturalWidth : 0 }))`,
    );
    // teaser/003 made nothing; the others show a 320 px thumbnail.
    expect(thumbs).toEqual([
      { job: "teaser/002", width: 320 },
      { job: "teaser/003", width: 0 },
      { job: "teaser/001", width: 320 },
      { job: "poster/001", width: 320 },
    ]);
  });

  it("unfolds a job's detail on demand, where its videos play the downloaded files and its pictures decode", async () => {
    for (const job of ["teaser/001", "teaser/002", "poster/001"]) {
      await page.click(`article[data-job="${job}"] summary.tile`);
    }
    // Three output videos, each its poster frame until played; the restyle steps' source
    // videos are links to them, not a second copy.
    const posters = await page.evaluate<{ href: string; poster: string; width: number }[]>(
      `[...document.querySelectorAll("a.player")].map((a) => ({ href: a.getAttribute("href"),
        poster: a.querySelector("img").getAttribute("src"), width: a.querySelector("img").naturalWidth }))`,
    );
    expect(posters.map((poster) => poster.href).sort()).toEqual([
      "../outputs/teasers/001/animate.mp4",
      "../outputs/teasers/001/restyle.mp4",
      "../outputs/teasers/002/animate.mp4",
    ]);
    expect(await page.evaluate<number>(`document.querySelectorAll("video").length`)).toBe(0);
    // A click makes the player, with the poster, and it plays the downloaded file: the real
    // 64×64 H.264 clip.
    for (let i = 0; i < 3; i++) await page.click("a.player");
    await until(
      page,
      `[...document.querySelectorAll("video")].every((v) => v.readyState >= 1 || v.error !== null)`,
    );
    const videos = await page.evaluate<
      { src: string; poster: string; error: number | null; width: number }[]
    >(
      `[...document.querySelectorAll("video")].map((v) => ({ src: v.getAttribute("src"), poster: v.getAttribute("poster"),
        error: v.error && v.error.code, width: v.videoWidth }))`,
    );
    expect(videos).toHaveLength(3);
    for (const video of videos) {
      expect(video, video.src).toMatchObject({ error: null, width: 64 });
      expect(video.poster).toMatch(/^thumbnails\/[0-9a-f]{64}-320\.jpg$/);
    }
    await until(page, `[...document.querySelectorAll(".detail img")].every((img) => img.complete)`);
    const images = await page.evaluate<{ src: string; width: number }[]>(
      `[...document.querySelectorAll(".detail img")].map((img) => ({ src: img.getAttribute("src"), width: img.naturalWidth }))`,
    );
    // The poster frames of the players, then the two pictures of the poster job.
    expect(images.filter((image) => !image.src.startsWith("thumbnails/")).map((image) => image.src)).toEqual([
      "../outputs/posters/001/still.png",
      "../outputs/posters/001/framed.png",
    ]);
    for (const image of images) expect(image.width, image.src).toBeGreaterThan(0);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it("marks failed jobs and steps with a visible badge and the first line of the error on the tile", async () => {
    const failed = await page.evaluate<{ job: string; badge: string; error: string; steps: string[] }[]>(
      `[...document.querySelectorAll("article.job-failed")].map((a) => ({ job: a.dataset.job,
        badge: a.querySelector("h2 .badge").innerText,
        error: a.querySelector(".tile-error").innerText,
        steps: [...a.querySelectorAll(".step-failed")].map((s) => s.dataset.step) }))`,
    );
    expect(failed).toEqual([
      {
        job: "teaser/002",
        badge: "FAILED",
        error: "restyle: content policy: the prompt was refused <b>twice</b>",
        steps: ["teaser/002/restyle"],
      },
      {
        job: "teaser/003",
        badge: "FAILED",
        error: "animate: the submission's answer was lost (socket hang up)",
        steps: ["teaser/003/animate", "teaser/003/restyle"],
      },
    ]);
  });

  it("filters by state and by model, and shows everything again", async () => {
    await page.click("#state-failed");
    expect(await page.evaluate<string[]>(visibleJobs)).toEqual(["teaser/002", "teaser/003"]);
    await page.screenshot({ path: SCREENSHOT.replace(".png", "-failed-only.png"), fullPage: true });
    await page.click("#state-all");
    await page.click("#model-m3"); // acme/still-maker
    expect(await page.evaluate<string[]>(visibleJobs)).toEqual(["poster/001"]);
    await page.click("#model-all");
    expect(await page.evaluate<string[]>(visibleJobs)).toHaveLength(4);
  });

  it("opens on the failed jobs with #failed, and unfolds the job a link points at", async () => {
    await page.goto(`${reportUrl}#failed`);
    expect(await page.evaluate<string[]>(visibleJobs)).toEqual(["teaser/002", "teaser/003"]);
    await page.goto(`${reportUrl}#job-1`);
    expect(await page.evaluate<boolean>(`document.querySelector("#job-1 > details").open`)).toBe(true);
  });

  it("filters without script too", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const plain = await context.newPage();
      await plain.goto(reportUrl);
      await plain.click("#state-failed");
      expect(await plain.evaluate<string[]>(visibleJobs)).toEqual(["teaser/002", "teaser/003"]);
    } finally {
      await context.close();
    }
  });

  it("asks the network for nothing, and runs its script under its own CSP without a console error", () => {
    expect(hostRequests).toBe(0);
    expect(consoleErrors).toEqual([]);
  });
});
