/**
 * downloadFile against a hostile world (issue 16): a full or read-only disk, an endless or
 * stalled answer, an HTML page where a video should be, and the parts a killed process left.
 * Real HTTP to the emulator's fault modes; real (tmpfs) disks.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { DEFAULT_MAX_DOWNLOAD_BYTES, DiskError, downloadFile } from "../src/api/download.js";
import { DownloadError } from "../src/api/errors.js";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { fakeClock, rejectionOf, type FakeClock } from "./api-helpers.js";
import { mountSmallDisk, smallDiskUnavailable, type SmallDisk } from "./helpers/small-disk.js";

let emulator: RunningEmulator;
let clock: FakeClock = fakeClock();
let dir: string;
const disks: SmallDisk[] = [];
const noSmallDisk = smallDiskUnavailable();

beforeAll(async () => {
  emulator = await startEmulator();
});
beforeEach(() => {
  clock = fakeClock();
  emulator.reset();
  dir = mkdtempSync(path.join(tmpdir(), "runflow-download-hostile-"));
});
afterEach(() => {
  for (const disk of disks.splice(0)) disk.unmount();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(() => emulator.close());

function video(bytes: number): string {
  return `${emulator.url}/media/video.mp4?bytes=${bytes}`;
}

function mediaCalls() {
  return emulator.requestLog().filter((entry) => entry.endpoint === "media");
}

function listing(folder: string): string[] {
  return readdirSync(folder, { recursive: true }).map(String).sort();
}

describe("a full or read-only disk", () => {
  test("a file that does not fit fails with `no space left`, and nothing of it is kept or recorded", async (context) => {
    if (noSmallDisk) context.skip(noSmallDisk);
    const disk = mountSmallDisk(16);
    disks.push(disk);
    const destination = path.join(disk.dir, "outputs", "video.mp4");
    const error = await rejectionOf(downloadFile(video(20_000), destination, { clock }));
    expect(error).toBeInstanceOf(DiskError);
    expect((error as Error).message).toBe(
      `no space left on the disk holding ${path.join(disk.dir, "outputs")}`,
    );
    expect(listing(disk.dir)).toEqual(["outputs"]);
    // A disk error is not the file host's: not retried.
    expect(mediaCalls()).toHaveLength(1);
  });

  test("a file that fits is recorded with the size and sha256 of what is on the disk", async (context) => {
    if (noSmallDisk) context.skip(noSmallDisk);
    const disk = mountSmallDisk(64);
    disks.push(disk);
    const destination = path.join(disk.dir, "video.mp4");
    const downloaded = await downloadFile(video(20_000), destination, { clock });
    const expected = Buffer.from(await (await fetch(video(20_000))).arrayBuffer());
    expect(downloaded).toMatchObject({
      bytes: 20_000,
      sha256: createHash("sha256").update(expected).digest("hex"),
    });
  });

  test("a read-only disk is said so, not reported as a missing folder", async (context) => {
    if (noSmallDisk) context.skip(noSmallDisk);
    const disk = mountSmallDisk(16, { readOnly: true });
    disks.push(disk);
    const nested = path.join(disk.dir, "outputs", "clip", "video.mp4");
    const error = await rejectionOf(downloadFile(video(3_000), nested, { clock }));
    expect(error).toBeInstanceOf(DiskError);
    expect((error as Error).message).toBe(
      `${path.join(disk.dir, "outputs", "clip")} is read-only (its file system is mounted read-only)`,
    );
    expect((error as Error).message).not.toContain("ENOENT");
  });
});

describe("bounded answers", () => {
  test("an endless answer without Content-Length is cut at the size limit, and nothing is kept", async () => {
    emulator.configure({ faults: [{ endpoint: "media", kind: "endless" }] });
    const error = await rejectionOf(
      downloadFile(video(3_000), path.join(dir, "video.mp4"), { clock, maxBytes: 1_000_000 }),
    );
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toMatch(/larger than the 1000000 bytes allowed/);
    expect(listing(dir)).toEqual([]);
    expect(mediaCalls()).toHaveLength(1);
    // Without a limit of its own, a download has a finite one.
    expect(Number.isSafeInteger(DEFAULT_MAX_DOWNLOAD_BYTES)).toBe(true);
  });

  test("a body that stops moving is given up after the idle timeout, saying so, then tried again", async () => {
    emulator.configure({ faults: [{ endpoint: "media", kind: "stall" }] });
    const error = await rejectionOf(
      downloadFile(video(100_000), path.join(dir, "video.mp4"), { clock, idleTimeoutMs: 300, attempts: 2 }),
    );
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toBe(
      `could not download ${emulator.url}/media/video.mp4: the file host sent nothing for 300 ms (idle timeout)`,
    );
    expect(mediaCalls().map((entry) => entry.fault)).toEqual(["stall", "stall"]);
    expect(listing(dir)).toEqual([]);
  });
});

describe("files that are not the media they claim to be", () => {
  test("an HTML page answered 200 for a video fails the download, once, keeping nothing", async () => {
    emulator.configure({ faults: [{ endpoint: "media", kind: "html-page" }] });
    const error = await rejectionOf(downloadFile(video(3_000), path.join(dir, "animate.mp4"), { clock }));
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toMatch(
      /: the file host answered text\/html \(\d+ bytes\), not a video$/,
    );
    expect(mediaCalls()).toHaveLength(1);
    expect(listing(dir)).toEqual([]);
  });

  test("bytes of another kind (a PNG saved as .mp4) fail by their signature", async () => {
    const error = await rejectionOf(
      downloadFile(`${emulator.url}/media/image.png?w=8&h=8`, path.join(dir, "animate.mp4"), { clock }),
    );
    expect((error as Error).message).toMatch(/does not look like a video .*expected ISO media/);
  });

  test("a real image and a real video pass", async () => {
    await downloadFile(`${emulator.url}/media/image.png?w=8&h=8`, path.join(dir, "a.png"), { clock });
    await downloadFile(video(3_000), path.join(dir, "a.mp4"), { clock });
    expect(listing(dir)).toEqual(["a.mp4", "a.png"]);
  });
});

describe("parts left by a killed process", () => {
  test("are removed at the next write in their folder; other files stay", async () => {
    const folder = path.join(dir, "outputs", "item-1");
    mkdirSync(folder, { recursive: true });
    for (const name of ["animate.mp4.part-0123456789ab", "restyle.mp4.part-ba9876543210", "notes.part-x"]) {
      writeFileSync(path.join(folder, name), "left by a SIGKILL");
    }
    await downloadFile(video(3_000), path.join(folder, "animate.mp4"), { clock });
    expect(listing(folder)).toEqual(["animate.mp4", "notes.part-x"]);
    expect(existsSync(path.join(folder, "restyle.mp4.part-ba9876543210"))).toBe(false);
  });
});
