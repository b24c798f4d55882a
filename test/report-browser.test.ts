/**
 * The HTML report opened from disk in a real headless Chromium (Debian's `chromium`, driven
 * by playwright-core): every job is there, the videos load, failed steps are marked, and the
 * "show failed only" filter works without a server. A screenshot goes to /tmp/report.png.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runReportCommand } from "../src/cli/commands/report.js";
import { gradientPng, RUN_ID, seedReportRun } from "./report-fixture.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOT = "/tmp/report.png";

// CI installs chromium (.ci/run), so there a missing browser is a failure, not a skip.
const skip = !existsSync(CHROMIUM) && !process.env.CI;
if (skip) console.warn(`report-browser: skipped, ${CHROMIUM} is absent (apt-get install chromium)`);

describe.skipIf(skip)("the HTML report in headless Chromium", () => {
  let server: Server;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    // The source stills live on a media host, as in production: here a loopback server.
    const still = gradientPng(120, 80);
    server = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "image/png", "content-length": still.length });
      response.end(still);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const seeded = seedReportRun({ imageHost: `http://127.0.0.1:${port}` });
    const written = runReportCommand(
      RUN_ID,
      { statePath: seeded.statePath, quiet: true },
      {
        stdout: () => {},
        stderr: () => {},
      },
    );

    profile = mkdtempSync(path.join(os.tmpdir(), "runflow-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    await page.goto(pathToFileURL(written.path ?? "").href);
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("shows a card for every job instance with its counts at the top", async () => {
    expect(
      await page.evaluate<string[]>(
        `[...document.querySelectorAll("article.job")].map((a) => a.dataset.job)`,
      ),
    ).toEqual(["teaser/001", "teaser/002", "teaser/003", "poster/001"]);
    expect(await page.evaluate<string>(`document.querySelector(".counts").innerText`)).toMatch(/4\s*done/);
  });

  it("loads every video's metadata from the downloaded files and every image", async () => {
    await page.waitForFunction(
      `[...document.querySelectorAll("video")].every((v) => v.readyState >= 1 || v.error !== null)`,
      undefined,
      { timeout: 15_000 },
    );
    const videos = await page.evaluate<
      { src: string; readyState: number; error: number | null; width: number }[]
    >(
      `[...document.querySelectorAll("video")].map((v) => ({ src: v.getAttribute("src"), readyState: v.readyState,
        error: v.error && v.error.code, width: v.videoWidth }))`,
    );
    expect(videos).toHaveLength(5);
    for (const video of videos) {
      // The tiny MP4 is real H.264, 64×64: metadata loaded means Chromium parsed it.
      expect(video, video.src).toMatchObject({ error: null, width: 64 });
      expect(video.readyState, video.src).toBeGreaterThanOrEqual(1);
    }
    await page.waitForFunction(`[...document.images].every((img) => img.complete)`, undefined, {
      timeout: 15_000,
    });
    const images = await page.evaluate<{ src: string; width: number }[]>(
      `[...document.images].map((img) => ({ src: img.getAttribute("src"), width: img.naturalWidth }))`,
    );
    // Three source stills from the media host, the poster still and its framed copy.
    expect(images).toHaveLength(5);
    for (const image of images) expect(image.width, image.src).toBeGreaterThan(0);
  });

  it("marks failed jobs and steps with a visible badge", async () => {
    const failed = await page.evaluate<{ job: string; badge: string; steps: string[] }[]>(
      `[...document.querySelectorAll("article.job-failed")].map((a) => ({ job: a.dataset.job,
        badge: a.querySelector("h2 .badge").innerText,
        steps: [...a.querySelectorAll(".step-failed")].map((s) => s.dataset.step) }))`,
    );
    expect(failed).toEqual([
      { job: "teaser/002", badge: "FAILED", steps: ["teaser/002/restyle"] },
      { job: "teaser/003", badge: "FAILED", steps: ["teaser/003/animate", "teaser/003/restyle"] },
    ]);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it("hides the successful jobs when 'show failed only' is ticked, and shows them again", async () => {
    const visibleJobs = `[...document.querySelectorAll("article.job")]
      .filter((a) => getComputedStyle(a).display !== "none").map((a) => a.dataset.job)`;
    await page.click("#failed-only");
    expect(await page.evaluate<string[]>(visibleJobs)).toEqual(["teaser/002", "teaser/003"]);
    await page.screenshot({ path: SCREENSHOT.replace(".png", "-failed-only.png"), fullPage: true });
    await page.click("#failed-only");
    expect(await page.evaluate<string[]>(visibleJobs)).toHaveLength(4);
  });

  it("runs its script under its own Content-Security-Policy without a console error", () => {
    expect(consoleErrors).toEqual([]);
  });
});
