/**
 * Where a run's files live (docs/decisions.md, "Outputs"): every run writes its files of a
 * job instance into a folder of its own, `<outputs>/.runs/<run-id>/`, so no run ever
 * overwrites another's file and each run's records stay true. The instance's outputs folder
 * itself (`<outputs>/STEP.EXT`) is the "latest" view, kept by latest-view.ts.
 *
 * The plan stays free of run ids (`retry` runs a stored plan again under a new id): it says
 * where in the instance's outputs folder a file goes, and these functions move that into
 * the folder of the run that executes it.
 */
import path from "node:path";

/** The folder, inside each instance's outputs folder, that holds one folder per run. */
export const RUNS_FOLDER = ".runs";

/** The folder of run `runId` inside the instance's outputs folder `outputsDir`. */
export function runFolder(outputsDir: string, runId: string): string {
  return path.join(outputsDir, RUNS_FOLDER, runId);
}

function isInside(file: string, folder: string): boolean {
  const relative = path.relative(folder, file);
  return relative === "" || (!relative.startsWith("..") && !path.isAbsolute(relative));
}

/**
 * `file` (a path under the instance's outputs folder, as the plan says) moved into the run's
 * folder; a path outside the outputs folder, or already in a run's folder, stays as it is.
 */
export function intoRunFolder(file: string, outputsDir: string, runDir: string): string {
  if (!isInside(file, outputsDir) || isInside(file, path.join(outputsDir, RUNS_FOLDER))) return file;
  return path.join(runDir, path.relative(outputsDir, file));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Any run's folder of this instance where it appears in a text (an argument, a variable). */
function runFolderPattern(outputsDir: string): RegExp {
  return new RegExp(`${escapeRegExp(path.join(outputsDir, RUNS_FOLDER) + path.sep)}[^/\\\\]+`, "g");
}

/**
 * `text` with every run folder of this instance named in it replaced by `runDir`: a step
 * planned against an earlier run's file (a reused step's `files`) reads this run's own
 * copy of it, which the takeover put there before the step could start.
 */
export function inRunFolder(text: string, outputsDir: string, runDir: string): string {
  if (!text.includes(RUNS_FOLDER)) return text;
  return text.replace(runFolderPattern(outputsDir), () => runDir);
}

/**
 * `text` with every run folder of this instance replaced by the instance's outputs folder:
 * what a run step's fingerprint hashes, so the same step over the same files is the same
 * step whichever run's folder holds them (the files' content is hashed apart).
 */
export function stableText(text: string, outputsDir: string): string {
  if (!text.includes(RUNS_FOLDER)) return text;
  return text.replace(runFolderPattern(outputsDir), () => outputsDir);
}

/**
 * Where a file of a run's folder shows in the latest view: `<outputs>/.runs/<id>/REST` →
 * `<outputs>/REST`; undefined for a file outside the instance's run folders.
 */
export function latestPathOf(file: string, outputsDir: string): string | undefined {
  const relative = path.relative(path.join(outputsDir, RUNS_FOLDER), file);
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) return undefined;
  const parts = relative.split(path.sep);
  if (parts.length < 2) return undefined;
  return path.join(outputsDir, ...parts.slice(1));
}
