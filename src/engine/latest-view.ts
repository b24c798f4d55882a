/**
 * The "latest" view of a job instance's outputs folder (docs/decisions.md, "Outputs"): the
 * files at `<outputs>/STEP.EXT` are those of the newest run of each step, linked from that
 * run's own folder (`.runs/<run-id>/`, run-folders.ts) once the step has succeeded or been
 * reused. A step that ends failed, timed out, cancelled, unknown or blocked takes its
 * earlier files out of the view: the folder never shows an older run's file as if it were
 * the newest run's result. The older file stays in its run's folder. A run that was told
 * to stop (interrupted, cancelled, a refused token, no balance) takes nothing out from then
 * on: what it did not get to do says nothing about the files the view shows.
 *
 * Beside the runs' folders, `.runs/STEP.latest.json` says which run the view's files of a
 * step come from (or that the step's newest run did not succeed, and where its last good
 * files are). The view is a convenience for people and tools that look at the folder; the
 * state database never records a path in it.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { PlannedStep } from "../plan/types.js";
import type { StepFiles } from "../store/types.js";
import { newPartPath, partFinished } from "../util/part-files.js";
import { linkOrCopyAtomic } from "./local-files.js";
import { latestPathOf, runFolder, RUNS_FOLDER } from "./run-folders.js";
import { StepState } from "./states.js";

/** What `.runs/STEP.latest.json` holds. Paths are relative to the instance's outputs folder, with `/`. */
export interface LatestRecord {
  step: string;
  /**
   * The run that put the files in the view, or whose step failed. A later run that only
   * reused the same files leaves the record (and the view) as it is.
   */
  run: string;
  state: StepState;
  /** The files of that run now in the view (none unless it succeeded or was reused). */
  files: string[];
  /** A reused step's files were made by this earlier run. */
  reusedFrom?: string | undefined;
  /** When the newest run did not succeed: the run folder files of the last one that did. */
  lastSucceeded?: { run: string; files: string[] } | undefined;
}

/** The step did not succeed (or could not run for that reason): what the view showed of it is not its newest result. */
const FAILED_STATES: ReadonlySet<StepState> = new Set([
  StepState.failed,
  StepState.timed_out,
  StepState.unknown,
  StepState.blocked,
]);

export function latestRecordPath(outputsDir: string, stepId: string): string {
  return path.join(outputsDir, RUNS_FOLDER, `${stepId}.latest.json`);
}

function slashed(relative: string): string {
  return relative.split(path.sep).join("/");
}

async function readRecord(file: string): Promise<LatestRecord | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as LatestRecord;
    return Array.isArray(parsed.files) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

async function writeRecord(file: string, record: LatestRecord): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = newPartPath(file);
  try {
    await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`);
    await rename(temporary, file);
  } finally {
    partFinished(temporary);
  }
}

/** Whether the view shows exactly `runFiles`, as the same files (links to them), for this step. */
async function showsAlready(outputsDir: string, record: LatestRecord, runFiles: string[]): Promise<boolean> {
  if (record.files.length !== runFiles.length) return false;
  for (const file of runFiles) {
    const latest = latestPathOf(file, outputsDir);
    if (latest === undefined || !record.files.includes(slashed(path.relative(outputsDir, latest))))
      return false;
    const [shown, own] = await Promise.all([
      stat(latest).catch(() => undefined),
      stat(file).catch(() => undefined),
    ]);
    if (!shown || !own || shown.ino !== own.ino || shown.dev !== own.dev) return false;
  }
  return true;
}

export class LatestView {
  readonly #runId: string;
  readonly #warn: (message: string) => void;
  readonly #runStopped: () => boolean;
  /** The work in progress per step (one step's updates stay in order). */
  readonly #pending = new Map<string, Promise<void>>();

  /** `runStopped`: whether the run was told to stop (interrupt, cancel, refused token, no balance). */
  constructor(runId: string, warn: (message: string) => void, runStopped: () => boolean) {
    this.#runId = runId;
    this.#warn = warn;
    this.#runStopped = runStopped;
  }

  /**
   * A step of this run reached `state` for good: its files (in this run's folder) go into
   * the view when it succeeded; its earlier files leave it when it failed. Returns at
   * once; `settled()` waits for the file system.
   */
  stepEnded(
    step: PlannedStep,
    state: StepState,
    files: StepFiles | null | undefined,
    reusedFrom?: string,
  ): void {
    let update: (() => Promise<void>) | undefined;
    if (state === StepState.succeeded || state === StepState.reused) {
      const runFiles = Object.values(files ?? {}).flat();
      // Without downloads (`--no-download`) a run has no files to show: the view stays.
      if (runFiles.length === 0) return;
      update = () => this.#publish(step, state, runFiles, reusedFrom);
    } else if (FAILED_STATES.has(state) && !this.#runStopped()) {
      update = () => this.#withdraw(step, state);
    }
    if (!update) return;
    const key = `${step.outputsDir}\u0000${step.stepId}`;
    const run = update;
    const next = (this.#pending.get(key) ?? Promise.resolve()).then(run).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      this.#warn(`${step.address}: the latest view in ${step.outputsDir} was not updated (${reason})`);
    });
    this.#pending.set(key, next);
    void next.then(() => {
      if (this.#pending.get(key) === next) this.#pending.delete(key);
    });
  }

  /** Resolves once every update asked for so far is done (or warned about). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending.values());
  }

  async #publish(
    step: PlannedStep,
    state: StepState,
    runFiles: string[],
    reusedFrom?: string,
  ): Promise<void> {
    const recordFile = latestRecordPath(step.outputsDir, step.stepId);
    const earlier = await readRecord(recordFile);
    // A reused step's files are links to the ones the view most likely shows already: then
    // nothing changes (a resumed run of thousands of steps makes no writes for them).
    if (state === StepState.reused && earlier && (await showsAlready(step.outputsDir, earlier, runFiles)))
      return;
    const shown: string[] = [];
    for (const file of runFiles) {
      // A run step's output outside the outputs folder (its own `cwd`) is the user's to keep.
      const latest = latestPathOf(file, step.outputsDir);
      if (latest === undefined) continue;
      await linkOrCopyAtomic(file, latest);
      shown.push(slashed(path.relative(step.outputsDir, latest)));
    }
    for (const old of earlier?.files ?? []) {
      if (!shown.includes(old)) await rm(path.join(step.outputsDir, old), { force: true });
    }
    await writeRecord(recordFile, {
      step: step.stepId,
      run: this.#runId,
      state,
      files: shown,
      ...(reusedFrom !== undefined ? { reusedFrom } : {}),
    });
  }

  async #withdraw(step: PlannedStep, state: StepState): Promise<void> {
    const recordFile = latestRecordPath(step.outputsDir, step.stepId);
    const earlier = await readRecord(recordFile);
    // Nothing of this step was ever shown: nothing to take out, and nothing written (a run
    // whose every step fails leaves its folders as empty as it found them).
    if (!earlier) return;
    for (const old of earlier.files) await rm(path.join(step.outputsDir, old), { force: true });
    const lastSucceeded =
      earlier.files.length > 0
        ? {
            run: earlier.run,
            files: earlier.files.map((file) =>
              slashed(
                path.relative(step.outputsDir, path.join(runFolder(step.outputsDir, earlier.run), file)),
              ),
            ),
          }
        : earlier.lastSucceeded;
    await writeRecord(recordFile, {
      step: step.stepId,
      run: this.#runId,
      state,
      files: [],
      ...(lastSucceeded ? { lastSucceeded } : {}),
    });
  }
}
