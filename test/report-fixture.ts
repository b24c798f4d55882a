/**
 * A finished run in a real state database, with real downloaded files: the subject of the
 * report tests. Times are fixed, so renderings are exact; only the temp folder varies.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { deflateSync } from "node:zlib";
import { afterEach } from "vitest";
import { crc32 } from "../src/emulator/crc32.js";
import { mp4File } from "../src/emulator/mp4.js";
import { TINY_MP4 } from "../src/emulator/tiny-video.js";
import { readAll } from "../src/emulator/virtual-file.js";
import { openSqliteStore, type NewStep, type StepPatch } from "../src/store/index.js";

export const RUN_ID = "r-20250301-0200-ab12";
export const T0 = Date.UTC(2025, 2, 1, 2, 0, 0);
export const HOSTILE_PROMPT = `A cat <script>alert("pwned")</script> & a | pipe, *stars* and [a](javascript:alert(1))`;

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempRoot(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-report-"));
  tempDirs.push(dir);
  return dir;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeBytes = Buffer.from(type, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeBytes, data));
  return Buffer.concat([length, typeBytes, data, crc]);
}

/** A W×H RGB gradient PNG (real, decodable), made with node:zlib. */
export function gradientPng(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      raw.set([Math.round((x / width) * 255), Math.round((y / height) * 255), 160], row + 1 + x * 3);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(raw)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

export interface SeededRun {
  root: string;
  statePath: string;
  /** Every downloaded file, absolute. */
  files: string[];
}

export interface SeedOptions {
  /** Where the source stills live (a loopback server in the browser test). */
  imageHost?: string;
  /** Open the store without redaction, so a token can be planted (default: redact nothing). */
  plantInError?: string;
  /**
   * The folder to seed (default: a temporary one removed after each test). A suite whose
   * tests share one run passes its own and removes it after all of them.
   */
  root?: string;
}

/**
 * Run RUN_ID of workflow `teasers`: three job instances of `teaser` (animate → restyle) and
 * one `poster` instance (a model still, then a local run step):
 * - teaser/001: both steps succeeded (animate reused from an earlier run);
 * - teaser/002: animate succeeded, restyle failed after 3 attempts (hostile prompt);
 * - teaser/003: animate `unknown` (answer lost), restyle blocked;
 * - poster/001: a still and a run step, both succeeded.
 */
export function seedReportRun(options: SeedOptions = {}): SeededRun {
  const root = options.root ?? tempRoot();
  const statePath = path.join(root, "state", "runflow.db");
  const imageHost = options.imageHost ?? "https://images.example.com";
  const outputsOf = (instance: string) => path.join(root, "outputs", "teasers", instance);
  const files: string[] = [];
  const write = (file: string, content: Buffer): string => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    files.push(file);
    return file;
  };
  const apiUrl = (request: string, name: string) => `https://api.runcomfy.example/files/${request}/${name}`;

  const store = openSqliteStore(statePath, { secrets: [] });
  try {
    store.createRun({
      id: RUN_ID,
      workflowName: "teasers",
      workflowFile: "workflows/teasers.yaml",
      kind: "apply",
      plan: { steps: [] },
      options: { concurrency: 8 },
      startedAt: T0,
      pid: 4242,
      hostname: "render-box",
      apiOrigin: "https://model-api.runcomfy.net",
    });
    const teaser = (key: string, stepId: "animate" | "restyle", input: unknown): NewStep => ({
      address: `teaser/${key}/${stepId}`,
      jobId: "teaser",
      instanceKey: key,
      stepId,
      kind: "model",
      model: stepId === "animate" ? "minimax/Hailuo Video 01 Live" : "runwayml/runway-aleph/video-to-video",
      state: "pending",
      input,
    });
    const animateInput = (key: string, prompt: string) => ({
      prompt,
      image_url: `${imageHost}/stills/${key}.png`,
      prompt_optimizer: true,
    });
    const restyleInput = (videoUrl: string) => ({
      prompt: "cinematic teal-and-orange grade, 35mm film grain",
      video_url: videoUrl,
      ratio: "1280:720",
    });
    const animateUrl = (key: string) => apiUrl(`req-animate-${key}`, "video.mp4");
    store.insertSteps(
      RUN_ID,
      [
        teaser("001", "animate", animateInput("001", "A paper boat drifts down a rain-soaked street")),
        teaser("001", "restyle", restyleInput(animateUrl("001"))),
        teaser("002", "animate", animateInput("002", HOSTILE_PROMPT)),
        teaser("002", "restyle", restyleInput(animateUrl("002"))),
        teaser("003", "animate", animateInput("003", "A lighthouse in a storm")),
        teaser("003", "restyle", restyleInput("${{ steps.animate.output.video }}")),
        {
          address: "poster/001/still",
          jobId: "poster",
          instanceKey: "001",
          stepId: "still",
          kind: "model",
          model: "acme/still-maker",
          state: "pending",
          input: { prompt: "A poster of a paper boat", seed: 7 },
        },
        {
          address: "poster/001/frame",
          jobId: "poster",
          instanceKey: "001",
          stepId: "frame",
          kind: "run",
          state: "pending",
          input: {
            argv: ["ffmpeg", "-i", "still.png", "framed.png"],
            cwd: "/work",
            env: { SECRET_THING: "hunter2" },
          },
        },
      ],
      T0,
    );
    const finish = (address: string, patch: Omit<StepPatch, "updatedAt">, endAt: number) =>
      store.updateStep(RUN_ID, address, { ...patch, updatedAt: endAt });
    const output = (address: string, name: string, url: string, file: string | undefined) =>
      store.recordOutput({
        runId: RUN_ID,
        address,
        name,
        url,
        path: file,
        bytes: file ? statSync(file).size : undefined,
        sha256: file ? createHash("sha256").update(readFileSync(file)).digest("hex") : undefined,
        createdAt: T0,
      });

    // teaser/001: animate reused from an earlier run, restyle done.
    const v1 = write(path.join(outputsOf("001"), "animate.mp4"), TINY_MP4);
    finish(
      "teaser/001/animate",
      {
        state: "reused",
        reusedFromRun: "r-20250228-0200-ff00",
        requestId: "req-animate-001",
        finishedAt: T0 + 1_000,
      },
      T0 + 1_000,
    );
    output("teaser/001/animate", "video", animateUrl("001"), v1);
    const v1r = write(path.join(outputsOf("001"), "restyle.mp4"), TINY_MP4);
    finish(
      "teaser/001/restyle",
      {
        state: "succeeded",
        attempt: 1,
        requestId: "req-restyle-001",
        startedAt: T0 + 2_000,
        finishedAt: T0 + 94_000,
      },
      T0 + 94_000,
    );
    output("teaser/001/restyle", "video", apiUrl("req-restyle-001", "video.mp4"), v1r);

    // teaser/002: animate done, restyle failed after three attempts.
    const v2 = write(path.join(outputsOf("002"), "animate.mp4"), TINY_MP4);
    finish(
      "teaser/002/animate",
      {
        state: "succeeded",
        attempt: 1,
        requestId: "req-animate-002",
        startedAt: T0 + 2_000,
        finishedAt: T0 + 62_000,
      },
      T0 + 62_000,
    );
    output("teaser/002/animate", "video", animateUrl("002"), v2);
    finish(
      "teaser/002/restyle",
      {
        state: "failed",
        attempt: 3,
        requestId: "req-restyle-002c",
        startedAt: T0 + 63_000,
        finishedAt: T0 + 300_000,
        error: `content policy: the prompt was refused <b>twice</b>${options.plantInError ? ` (token ${options.plantInError})` : ""}\nrequest req-restyle-002c`,
      },
      T0 + 300_000,
    );

    // teaser/003: the animate answer was lost; restyle never ran. Its start time is only in
    // its attempt, as the engine records model steps.
    store.startAttempt({
      runId: RUN_ID,
      address: "teaser/003/animate",
      attempt: 1,
      workflowName: "teasers",
      fingerprint: "fp-teaser-003-animate",
      startedAt: T0 + 3_000,
    });
    finish(
      "teaser/003/animate",
      {
        state: "unknown",
        finishedAt: T0 + 33_000,
        error: "the submission's answer was lost (socket hang up)",
      },
      T0 + 33_000,
    );
    finish(
      "teaser/003/restyle",
      { state: "blocked", finishedAt: T0 + 33_000, error: "teaser/003/animate did not succeed" },
      T0 + 33_000,
    );

    // poster/001: a still, then a local run step that frames it.
    const still = write(path.join(root, "outputs", "posters", "001", "still.png"), gradientPng(96, 64));
    finish(
      "poster/001/still",
      {
        state: "succeeded",
        attempt: 1,
        requestId: "req-still-001",
        startedAt: T0 + 4_000,
        finishedAt: T0 + 9_500,
      },
      T0 + 9_500,
    );
    output("poster/001/still", "image", apiUrl("req-still-001", "image.png"), still);
    const framed = write(path.join(root, "outputs", "posters", "001", "framed.png"), gradientPng(64, 96));
    finish(
      "poster/001/frame",
      {
        state: "succeeded",
        attempt: 1,
        startedAt: T0 + 9_600,
        finishedAt: T0 + 10_100,
        stdout: "frame= 1 fps=0.0 q=-0.0 Lsize=N/A\n",
      },
      T0 + 10_100,
    );
    output("poster/001/frame", "image", pathToFileURL(framed).href, framed);

    store.finishRun(RUN_ID, {
      status: "failed",
      exitCode: 1,
      finishedAt: T0 + 301_000,
      counts: { reused: 1, succeeded: 4, failed: 1, unknown: 1, blocked: 1 },
    });
  } finally {
    store.close();
  }
  return { root, statePath, files };
}

export interface LargeRunOptions {
  /** Job instances (`clip/0001` …), each animate → restyle. */
  jobs: number;
  /** How many different video contents the outputs cycle through (each is a real MP4). */
  distinctVideos: number;
  /** As SeedOptions.root. */
  root?: string;
}

export const LARGE_RUN_ID = "r-20250302-0200-cd34";
/** The models of the large run: animate alternates between the first two. */
export const LARGE_RUN_MODELS = [
  "minimax/Hailuo Video 01 Live",
  "kling/kling-v2-master/image-to-video",
  "runwayml/runway-aleph/video-to-video",
] as const;

/**
 * A night of work: `jobs` instances of animate (a remote still → a video) → restyle (that
 * video → another), with real MP4 files on disk and their sha256 recorded as downloads
 * record it. Every 10th job's restyle failed; every 25th job's animate failed and its
 * restyle was blocked; the rest succeeded. Written in one transaction.
 */
export function seedLargeRun(options: LargeRunOptions): SeededRun {
  const root = options.root ?? tempRoot();
  const statePath = path.join(root, "state", "runflow.db");
  const files: string[] = [];
  // The tiny clip padded by a different number of bytes: a different file, the same picture.
  const variants = Array.from({ length: options.distinctVideos }, (_, i) => {
    const bytes = i === 0 ? TINY_MP4 : readAll(mp4File(TINY_MP4.length + 8 + i));
    return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
  });
  const apiUrl = (request: string) => `https://api.runcomfy.example/files/${request}/video.mp4`;
  const store = openSqliteStore(statePath, { secrets: [] });
  try {
    store.setGroupCommit(true);
    store.createRun({
      id: LARGE_RUN_ID,
      workflowName: "night",
      workflowFile: "workflows/night.yaml",
      kind: "apply",
      plan: { steps: [] },
      options: { concurrency: 16 },
      startedAt: T0,
      pid: 4242,
      hostname: "render-box",
    });
    const keys = Array.from({ length: options.jobs }, (_, i) => String(i + 1).padStart(4, "0"));
    const steps: NewStep[] = keys.flatMap((key, i) => [
      {
        address: `clip/${key}/animate`,
        jobId: "clip",
        instanceKey: key,
        stepId: "animate",
        kind: "model" as const,
        model: LARGE_RUN_MODELS[i % 2],
        state: "pending" as const,
        input: {
          prompt: `shot ${key}: a paper boat on a rainy street`,
          image_url: `https://images.example.com/stills/${key}.png`,
        },
      },
      {
        address: `clip/${key}/restyle`,
        jobId: "clip",
        instanceKey: key,
        stepId: "restyle",
        kind: "model" as const,
        model: LARGE_RUN_MODELS[2],
        state: "pending" as const,
        input: {
          prompt: "teal-and-orange grade",
          video_url: apiUrl(`req-animate-${key}`),
          ratio: "1280:720",
        },
      },
    ]);
    store.insertSteps(LARGE_RUN_ID, steps, T0);
    const output = (address: string, request: string, file: string, variant: (typeof variants)[number]) => {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, variant.bytes);
      files.push(file);
      store.recordOutput({
        runId: LARGE_RUN_ID,
        address,
        name: "video",
        url: apiUrl(request),
        path: file,
        bytes: variant.bytes.length,
        sha256: variant.sha256,
        createdAt: T0,
      });
    };
    keys.forEach((key, i) => {
      const n = i + 1;
      const at = T0 + n * 1_000;
      const dir = path.join(root, "outputs", "night", key);
      const variant = (offset: number) => variants[(2 * i + offset) % variants.length]!;
      if (n % 25 === 0) {
        store.updateStep(LARGE_RUN_ID, `clip/${key}/animate`, {
          state: "failed",
          attempt: 1,
          startedAt: at,
          finishedAt: at + 30_000,
          error: `content policy: the still of shot ${key} was refused\nrequest req-animate-${key}`,
          updatedAt: at + 30_000,
        });
        store.updateStep(LARGE_RUN_ID, `clip/${key}/restyle`, {
          state: "blocked",
          finishedAt: at + 30_000,
          error: `clip/${key}/animate did not succeed`,
          updatedAt: at + 30_000,
        });
        return;
      }
      store.updateStep(LARGE_RUN_ID, `clip/${key}/animate`, {
        state: "succeeded",
        attempt: 1,
        requestId: `req-animate-${key}`,
        startedAt: at,
        finishedAt: at + 60_000,
        updatedAt: at + 60_000,
      });
      output(`clip/${key}/animate`, `req-animate-${key}`, path.join(dir, "animate.mp4"), variant(0));
      if (n % 10 === 0) {
        store.updateStep(LARGE_RUN_ID, `clip/${key}/restyle`, {
          state: "failed",
          attempt: 3,
          requestId: `req-restyle-${key}`,
          startedAt: at + 61_000,
          finishedAt: at + 200_000,
          error: "the request failed: out of memory on the worker (attempt 3 of 3)",
          updatedAt: at + 200_000,
        });
        return;
      }
      store.updateStep(LARGE_RUN_ID, `clip/${key}/restyle`, {
        state: "succeeded",
        attempt: 1,
        requestId: `req-restyle-${key}`,
        startedAt: at + 61_000,
        finishedAt: at + 150_000,
        updatedAt: at + 150_000,
      });
      output(`clip/${key}/restyle`, `req-restyle-${key}`, path.join(dir, "restyle.mp4"), variant(1));
    });
    store.finishRun(LARGE_RUN_ID, {
      status: "failed",
      exitCode: 1,
      finishedAt: T0 + (options.jobs + 300) * 1_000,
      counts: {},
    });
    store.commitPending();
  } finally {
    store.close();
  }
  return { root, statePath, files };
}
