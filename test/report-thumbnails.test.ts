/**
 * Thumbnails of the HTML report made with the real ffmpeg (Debian's package, as CI installs
 * it): one JPEG per distinct file, cached by content so a second report makes none, a few
 * ffmpegs at a time, and a clean fallback — durations still read — when ffmpeg is absent.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runReportCommand } from "../src/cli/commands/report.js";
import type { Output } from "../src/cli/context.js";
import { TINY_MP4 } from "../src/emulator/tiny-video.js";
import { mp4File } from "../src/emulator/mp4.js";
import { readAll } from "../src/emulator/virtual-file.js";
import { makeThumbnails, runFfmpeg, type FfmpegRunner, type RunReport } from "../src/report/index.js";
import { mp4DurationMs } from "../src/report/mp4-duration.js";
import { gradientPng, RUN_ID, seedReportRun, tempRoot } from "./report-fixture.js";

const FFMPEG = "/usr/bin/ffmpeg";
// CI installs ffmpeg (.ci/run), so there a missing ffmpeg is a failure, not a skip.
const skip = !existsSync(FFMPEG) && !process.env.CI;
if (skip) console.warn(`report-thumbnails: skipped, ${FFMPEG} is absent (apt-get install ffmpeg)`);

const quiet: Output = { stdout: () => {}, stderr: () => {} };

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/**
 * A report of `videos` distinct real MP4s (the tiny clip, padded to different sizes), a copy
 * of the first under another name, and one still; their sha256 recorded, as downloads do.
 */
function reportOfFiles(videos: number): { report: RunReport; dir: string } {
  const dir = tempRoot();
  mkdirSync(path.join(dir, "outputs"), { recursive: true });
  const media: { name: string; index: number; kind: "video" | "image"; path: string; sha256: string }[] = [];
  const add = (name: string, kind: "video" | "image", bytes: Buffer) => {
    const file = path.join(dir, "outputs", name);
    writeFileSync(file, bytes);
    media.push({ name: kind, index: media.length, kind, path: file, sha256: sha256(bytes) });
  };
  for (let i = 0; i < videos; i++) {
    add(`clip-${i}.mp4`, "video", i === 0 ? TINY_MP4 : readAll(mp4File(TINY_MP4.length + 8 + i)));
  }
  add("copy-of-clip-0.mp4", "video", TINY_MP4);
  add("still.png", "image", gradientPng(96, 64));
  const report = {
    jobs: [
      {
        steps: [
          {
            inputs: [],
            outputs: media.map((m) => ({
              ...m,
              url: undefined,
              href: undefined,
              local: true,
              missing: false,
              bytes: undefined,
            })),
          },
        ],
      },
    ],
  } as unknown as RunReport;
  return { report, dir };
}

describe.skipIf(skip)("report thumbnails with ffmpeg", () => {
  it("makes one JPEG per distinct file, 320 px wide, the same bytes every time, and caches it by content", async () => {
    const { report, dir } = reportOfFiles(3);
    const reportDir = path.join(dir, "reports");
    const first = await makeThumbnails(report, { reportDir, ffmpeg: FFMPEG });
    expect(first.summary).toEqual({ made: 4, cached: 0, failed: 0, ffmpegAbsent: false });
    const thumbnails = readdirSync(path.join(reportDir, "thumbnails")).sort();
    expect(thumbnails).toHaveLength(4);
    for (const name of thumbnails) {
      expect(name).toMatch(/^[0-9a-f]{64}-320\.jpg$/);
      const jpeg = readFileSync(path.join(reportDir, "thumbnails", name));
      expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
      // The frame's width, from the JPEG's start-of-frame marker.
      const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
      expect(jpeg.readUInt16BE(sof + 7)).toBe(320);
    }
    const preview = first.previews.get(path.join(dir, "outputs", "clip-0.mp4"));
    expect(preview?.thumbnail).toMatch(/^thumbnails\/[0-9a-f]{64}-320\.jpg$/);
    expect(preview?.durationMs).toBe(1_000);
    // The copy has the same content, so the same thumbnail, made once.
    expect(first.previews.get(path.join(dir, "outputs", "copy-of-clip-0.mp4"))).toEqual(preview);

    // A second report makes nothing: every thumbnail comes from the cache.
    const calls: string[] = [];
    const counting: FfmpegRunner = (program, args) => {
      calls.push(args.join(" "));
      return runFfmpeg(program, args);
    };
    const second = await makeThumbnails(report, { reportDir, ffmpeg: FFMPEG, runner: counting });
    expect(second.summary).toEqual({ made: 0, cached: 4, failed: 0, ffmpegAbsent: false });
    expect(calls).toEqual([]);
    expect(second.previews).toEqual(first.previews);

    // Another folder, the same bytes: deterministic.
    const again = path.join(dir, "again");
    await makeThumbnails(report, { reportDir: again, ffmpeg: FFMPEG });
    for (const name of thumbnails) {
      expect(readFileSync(path.join(again, "thumbnails", name))).toEqual(
        readFileSync(path.join(reportDir, "thumbnails", name)),
      );
    }
  });

  it("runs no more ffmpegs at once than its bound", async () => {
    const { report, dir } = reportOfFiles(9);
    let running = 0;
    let most = 0;
    const counting: FfmpegRunner = async (program, args) => {
      running += 1;
      most = Math.max(most, running);
      try {
        return await runFfmpeg(program, args);
      } finally {
        running -= 1;
      }
    };
    const { summary } = await makeThumbnails(report, {
      reportDir: path.join(dir, "reports"),
      ffmpeg: FFMPEG,
      concurrency: 3,
      runner: counting,
    });
    expect(summary).toEqual({ made: 10, cached: 0, failed: 0, ffmpegAbsent: false });
    expect(most).toBeLessThanOrEqual(3);
  });

  it("leaves a file ffmpeg cannot read without a thumbnail, and the others with theirs", async () => {
    const { report, dir } = reportOfFiles(1);
    const broken = path.join(dir, "outputs", "still.png");
    writeFileSync(broken, "not a picture at all");
    const { previews, summary } = await makeThumbnails(report, {
      reportDir: path.join(dir, "reports"),
      ffmpeg: FFMPEG,
    });
    expect(summary).toEqual({ made: 1, cached: 0, failed: 1, ffmpegAbsent: false });
    expect(previews.get(broken)).toEqual({ thumbnail: undefined, durationMs: undefined });
    expect(readdirSync(path.join(dir, "reports", "thumbnails"))).toHaveLength(1); // no temporary left
  });
});

describe("report thumbnails without ffmpeg", () => {
  it("makes none, says so once on stderr, and still shows each video's duration on its tile", async () => {
    const seeded = seedReportRun();
    const err: string[] = [];
    const written = await runReportCommand(
      RUN_ID,
      { statePath: seeded.statePath, ffmpeg: path.join(seeded.root, "no-such-ffmpeg") },
      { stdout: () => {}, stderr: (text) => err.push(text) },
    );
    expect(written.thumbnails).toMatchObject({ made: 0, ffmpegAbsent: true });
    expect(err.join("")).toBe(
      "note: ffmpeg was not found, so the videos have no poster frame in the report (a tile with the file name stands in); install ffmpeg for thumbnails\n",
    );
    const html = readFileSync(written.path ?? "", "utf8");
    expect(html).not.toContain("<video");
    expect(html).toContain(
      '<a class="player video-tile" href="../outputs/teasers/001/restyle.mp4"><span class="play" aria-hidden="true">▶</span>' +
        '<span class="file-name">restyle.mp4</span><span>1s · 2.0 kB</span></a>',
    );
    expect(existsSync(path.join(seeded.root, "reports", "thumbnails"))).toBe(false);
    await runReportCommand(RUN_ID, { statePath: seeded.statePath, ffmpeg: false }, quiet);
  });

  it("reads an MP4's duration from its movie header, and nothing from a file that is not one", async () => {
    const dir = tempRoot();
    const video = path.join(dir, "v.mp4");
    writeFileSync(video, readAll(mp4File(TINY_MP4.length + 4096)));
    expect(await mp4DurationMs(video)).toBe(1_000);
    const png = path.join(dir, "p.png");
    writeFileSync(png, gradientPng(8, 8));
    expect(await mp4DurationMs(png)).toBeUndefined();
    expect(await mp4DurationMs(path.join(dir, "absent.mp4"))).toBeUndefined();
  });
});
