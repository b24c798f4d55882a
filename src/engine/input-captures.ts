/**
 * Input stills captured at run time (docs/decisions.md, "Input captures"): once a model
 * step's POST has left (or its request was re-attached), each of its input pictures that is
 * a URL on the user's media host is downloaded into the run's folder
 * (`<outputs>/.runs/RUN/.inputs/`), so the run's report still shows it once the URL is gone.
 *
 * Best effort, and never in the way: captures run in a lane of their own (a few at once,
 * no request slot), the step never waits for one, and a failed capture is only recorded
 * (with why) — the step neither fails nor retries for it. Each URL is captured once per run.
 * They are not outputs: no step's `files`, fingerprint or reuse reads them. The transport
 * and guards are the outputs' (api/download.ts: no token, a size cap, the media signature
 * check), with a smaller cap: only pictures are captured, never videos.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import PQueue from "p-queue";
import type { PlannedStep } from "../plan/types.js";
import { readStepInput } from "../plan/step-input.js";
import { mediaKindOf } from "../models/media-kind.js";
import type { EngineDeps } from "./deps.js";
import { outputPath, safeSegment } from "./output-files.js";
import { runFolder } from "./run-folders.js";

/** The folder of a run's folder that holds its captured inputs. */
export const CAPTURE_FOLDER = ".inputs";
/** The largest still captured: a picture, not a night's video. */
export const CAPTURE_MAX_BYTES = 20_000_000;
/** A media host that stops sending is given up this soon: a capture is not worth a long wait. */
const CAPTURE_IDLE_TIMEOUT_MS = 5_000;
/** Captures at once: they share the machine's bandwidth with the outputs' downloads. */
const CAPTURES_AT_ONCE = 2;
/**
 * The longest a capture may take, tries and waits included: the run waits for its captures
 * before it ends, and a host that cannot be reached must not hold it there for long.
 */
const CAPTURE_DEADLINE_MS = 30_000;
/** One retry for a transient failure (a 503, a cut connection); then it is not captured. */
const CAPTURE_ATTEMPTS = 2;

const IMAGE_EXTENSION = /^\.(png|jpe?g|webp|gif)$/;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The file name of a captured URL: the field it came from and a hash of the URL, one safe segment. */
function captureFileName(field: string, url: string): string {
  let ext = "";
  try {
    ext = path.extname(new URL(url).pathname).toLowerCase();
  } catch {
    ext = "";
  }
  // The media signature check judges the file by its family (a JPEG named .png is a picture).
  if (!IMAGE_EXTENSION.test(ext)) ext = ".png";
  const hash = createHash("sha256").update(url).digest("hex").slice(0, 12);
  return `${safeSegment(field, "input")}-${hash}${ext}`;
}

export class InputCaptures {
  readonly #queue = new PQueue({ concurrency: CAPTURES_AT_ONCE });
  /** URLs asked for in this run: each is captured once. */
  readonly #asked = new Set<string>();

  constructor(
    private readonly deps: EngineDeps,
    private readonly runId: string,
    /** Aborted when the run stops: a capture in flight is dropped, not recorded. */
    private readonly signal: AbortSignal,
    /** Off with `--no-download`. */
    private readonly enabled: boolean,
  ) {}

  /**
   * Starts capturing the remote input stills of `body` (the step's request body); returns at
   * once. Fields filled from earlier steps (`deferredFields`) are skipped: those are this
   * run's outputs, already on disk.
   */
  capture(step: PlannedStep, body: Record<string, unknown>): void {
    if (!this.enabled) return;
    const skipped = new Set(step.deferredFields);
    for (const media of readStepInput("model", body).media) {
      if (skipped.has(media.name) || this.#asked.has(media.url)) continue;
      if (mediaKindOf(media.url, media.name) !== "image") continue;
      this.#asked.add(media.url);
      const folder = path.join(runFolder(step.outputsDir, this.runId), CAPTURE_FOLDER);
      void this.#queue.add(() => this.#captureOne(step.address, media.url, folder, media.name));
    }
  }

  /** Resolves once every capture started has ended (the run waits for it before it ends). */
  settled(): Promise<void> {
    return this.#queue.onIdle();
  }

  async #captureOne(address: string, url: string, folder: string, field: string): Promise<void> {
    if (this.signal.aborted) return;
    const { deps, runId } = this;
    const deadline = AbortSignal.timeout(CAPTURE_DEADLINE_MS);
    try {
      const destination = outputPath(folder, captureFileName(field, url));
      const file = await deps.download(url, destination, {
        signal: AbortSignal.any([this.signal, deadline]),
        clock: deps.clock,
        random: deps.random,
        attempts: CAPTURE_ATTEMPTS,
        maxBytes: CAPTURE_MAX_BYTES,
        idleTimeoutMs: CAPTURE_IDLE_TIMEOUT_MS,
      });
      await deps.store.outputs.recordInputCapture({
        runId,
        url,
        address,
        path: destination,
        bytes: file.bytes,
        sha256: file.sha256,
        createdAt: deps.clock.now(),
      });
    } catch (error) {
      if (this.signal.aborted) return;
      const why = deadline.aborted ? `not captured within ${CAPTURE_DEADLINE_MS / 1000} s` : messageOf(error);
      try {
        await deps.store.outputs.recordInputCapture({
          runId,
          url,
          address,
          error: why,
          createdAt: deps.clock.now(),
        });
      } catch {
        // Best effort to the end: a capture that cannot even be recorded changes nothing of the run.
      }
    }
  }
}
