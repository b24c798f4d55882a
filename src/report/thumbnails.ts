/**
 * Thumbnails for the HTML report: a small JPEG per local video (its first frame: the
 * player's poster and the gallery tile) and per local image (the tile), made with ffmpeg
 * when it is there, and a video's duration read from the file.
 *
 * Thumbnails are cached beside the report in `thumbnails/SHA256-320.jpg`, keyed by the
 * content of the file they show (the sha256 recorded at download): a second report of the
 * same run (or of another run that reused its outputs) makes none. ffmpeg runs without a shell, a few at a time. Without
 * ffmpeg, or for a file it cannot read, there is no thumbnail and the page shows a neutral
 * tile with the file's name, duration and size instead — never a blank player.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, rmdir, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { execa as Execa } from "execa";
import { relativeHref } from "./media.js";
import type { MediaRef, RunReport } from "./model.js";
import { mp4DurationMs } from "./mp4-duration.js";

/** What the page shows for one local file besides the file itself. */
export interface MediaPreview {
  /** The thumbnail's href relative to the report; undefined when none could be made. */
  thumbnail: string | undefined;
  /** Videos: how long they play (from the file's own header). */
  durationMs: number | undefined;
}

/** By the file's absolute path. */
export type MediaPreviews = ReadonlyMap<string, MediaPreview>;

/** Width of every thumbnail in pixels (the height follows the aspect ratio). */
export const THUMBNAIL_WIDTH = 320;
/** The folder beside the report that caches thumbnails. */
export const THUMBNAIL_FOLDER = "thumbnails";
/** One ffmpeg that hangs (a broken file, a network mount) does not hold up the report for long. */
const FFMPEG_TIMEOUT_MS = 30_000;

export type FfmpegOutcome = "made" | "absent" | "failed";
/** Runs ffmpeg with an argument vector; "absent" when the program is not there. */
export type FfmpegRunner = (program: string, args: readonly string[]) => Promise<FfmpegOutcome>;

export interface ThumbnailOptions {
  /** The report's folder: the cache goes in its `thumbnails/`, hrefs are relative to it. */
  reportDir: string;
  /** The ffmpeg to run (default `ffmpeg` on PATH); false makes no thumbnails. */
  ffmpeg?: string | false | undefined;
  /** ffmpegs at once (default: the CPU count, at most 4). */
  concurrency?: number | undefined;
  /** How ffmpeg is started (default: execa, no shell). */
  runner?: FfmpegRunner | undefined;
}

export interface ThumbnailSummary {
  /** Thumbnails ffmpeg made now (one per distinct content). */
  made: number;
  /** Thumbnails found in the cache (one per distinct content). */
  cached: number;
  /** Files ffmpeg could not read (they get the neutral tile). */
  failed: number;
  /** ffmpeg was looked for and not found. */
  ffmpegAbsent: boolean;
}

let execaModule: Promise<{ execa: typeof Execa }> | undefined;

/** The real runner: execa, no shell, no stdin, bounded in time. */
export const runFfmpeg: FfmpegRunner = async (program, args) => {
  const { execa } = await (execaModule ??= import("execa"));
  const result = await execa(program, args, {
    shell: false,
    stdin: "ignore",
    timeout: FFMPEG_TIMEOUT_MS,
    reject: false,
  });
  if (result.failed && (result.cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
    return "absent";
  }
  return result.exitCode === 0 ? "made" : "failed";
};

/**
 * The first frame, scaled to THUMBNAIL_WIDTH, as a baseline JPEG without metadata: the
 * same file gives the same bytes. Written to `temporary` (renamed by the caller).
 */
export function thumbnailArguments(source: string, temporary: string): string[] {
  return [
    ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-threads", "1"],
    ["-ss", "0", "-i", source, "-frames:v", "1", "-an", "-map_metadata", "-1"],
    ["-vf", `scale=${THUMBNAIL_WIDTH}:-2`, "-q:v", "5"],
    ["-fflags", "+bitexact", "-flags", "+bitexact", "-f", "image2", "-c:v", "mjpeg", temporary],
  ].flat();
}

/** The local files of the report that have something to preview, each once. */
function previewableFiles(report: RunReport): MediaRef[] {
  const byPath = new Map<string, MediaRef>();
  for (const step of report.jobs.flatMap((job) => job.steps)) {
    for (const media of [...step.outputs, ...step.inputs]) {
      if (!media.local || media.path === undefined || byPath.has(media.path)) continue;
      if (media.kind === "video" || media.kind === "image") byPath.set(media.path, media);
    }
  }
  return [...byPath.values()];
}

/**
 * The cache key of a file recorded without its sha256 (a database from before runflow
 * recorded one): its path, size and modification time, hashed — a changed file gets a new
 * thumbnail, and the report does not read every video through.
 */
async function standInKey(file: string): Promise<string> {
  const facts = await stat(file);
  return createHash("sha256").update(`${file}\0${facts.size}\0${facts.mtimeMs}`).digest("hex");
}

/** Runs `work` on every item, at most `limit` at once. */
async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * A thumbnail (from the cache or made now) and a duration for every local video and image
 * of the report. Never throws for a file: one that cannot be read has no thumbnail.
 */
export async function makeThumbnails(
  report: RunReport,
  options: ThumbnailOptions,
): Promise<{ previews: Map<string, MediaPreview>; summary: ThumbnailSummary }> {
  const cacheDir = path.join(options.reportDir, THUMBNAIL_FOLDER);
  const runner = options.runner ?? runFfmpeg;
  const ffmpeg = options.ffmpeg ?? "ffmpeg";
  const limit = Math.max(1, options.concurrency ?? Math.min(4, os.availableParallelism()));
  const summary: ThumbnailSummary = { made: 0, cached: 0, failed: 0, ffmpegAbsent: false };
  const previews = new Map<string, MediaPreview>();
  // Two outputs with the same content (a reused step's copy) share one thumbnail, made once.
  const thumbnails = new Map<string, Promise<boolean>>();

  const thumbnailOf = async (media: MediaRef & { path: string }): Promise<string | undefined> => {
    const file = path.join(
      cacheDir,
      `${media.sha256 ?? (await standInKey(media.path))}-${THUMBNAIL_WIDTH}.jpg`,
    );
    // Looked up and settled once per thumbnail: a second file with the same content waits
    // for the first one's answer, and counts neither as made nor as cached.
    let ready = thumbnails.get(file);
    if (!ready) {
      if (existsSync(file)) {
        summary.cached += 1;
        ready = Promise.resolve(true);
      } else {
        ready = ffmpeg === false || summary.ffmpegAbsent ? Promise.resolve(false) : makeOne(media.path, file);
      }
      thumbnails.set(file, ready);
    }
    return (await ready) ? file : undefined;
  };

  const makeOne = async (source: string, file: string): Promise<boolean> => {
    if (ffmpeg === false) return false;
    await mkdir(cacheDir, { recursive: true });
    const temporary = `${file}.${process.pid}-${Math.random().toString(36).slice(2)}.jpg`;
    const outcome = await runner(ffmpeg, thumbnailArguments(source, temporary)).catch(
      (): FfmpegOutcome => "failed",
    );
    if (outcome === "made" && existsSync(temporary)) {
      await rename(temporary, file);
      summary.made += 1;
      return true;
    }
    await rm(temporary, { force: true });
    if (outcome === "absent") summary.ffmpegAbsent = true;
    else summary.failed += 1;
    return false;
  };

  await forEachBounded(previewableFiles(report), limit, async (media) => {
    const file = media.path as string;
    // A file that cannot be read gets the neutral tile.
    const thumbnail = await thumbnailOf({ ...media, path: file }).catch(() => undefined);
    previews.set(file, {
      thumbnail: thumbnail === undefined ? undefined : relativeHref(options.reportDir, thumbnail),
      durationMs: media.kind === "video" ? await mp4DurationMs(file) : undefined,
    });
  });
  // Without ffmpeg no empty cache folder is left beside the report (rmdir keeps a full one).
  if (summary.made === 0) await rmdir(cacheDir).catch(() => undefined);
  return { previews, summary };
}
