/**
 * Files written through temporary parts: `NAME.part-<12 hex digits>` beside the destination,
 * renamed into place once complete (downloads, atomic copies). A process killed mid-write
 * (SIGKILL skips every cleanup) leaves its part behind; the first write of a later process
 * into that folder removes such leftovers, sparing the parts this process is writing.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";

const PART_SUFFIX = /\.part-[0-9a-f]{12}$/;

/** Parts this process is writing now: never anyone's leftovers. */
const liveParts = new Set<string>();

/**
 * Folders this process has prepared (made, and swept of leftovers): the steps of a job write
 * into one folder, so a chain needs one mkdir and one sweep per job, not one per file.
 */
const preparedFolders = new Set<string>();

/** A new temporary part for `destination`, registered as live until partFinished. */
export function newPartPath(destination: string): string {
  const part = `${destination}.part-${randomBytes(6).toString("hex")}`;
  liveParts.add(part);
  return part;
}

/** The part was renamed into place or removed. */
export function partFinished(part: string): void {
  liveParts.delete(part);
}

/** Makes `folder` (and its parents) once per process, and removes the parts earlier processes left in it. */
export async function prepareFolder(folder: string): Promise<void> {
  if (preparedFolders.has(folder)) return;
  await makeFolder(folder);
  await removeStaleParts(folder);
  preparedFolders.add(folder);
}

/** `folder` turned out to be gone (removed by hand mid-run): the next write prepares it again. */
export function forgetFolder(folder: string): void {
  preparedFolders.delete(folder);
}

/** Removes every part in `folder` that no write of this process owns; returns how many. */
export async function removeStaleParts(folder: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const part = path.join(folder, name);
    if (!PART_SUFFIX.test(name) || liveParts.has(part)) continue;
    await rm(part, { force: true }).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}

/**
 * `mkdir -p`. Node's recursive mkdir reports ENOENT when a missing parent cannot be made (a
 * read-only or full disk); the folders are then made one at a time, so the error thrown is
 * the real cause (EROFS, ENOSPC, EACCES).
 */
export async function makeFolder(folder: string): Promise<void> {
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    const missing: string[] = [];
    for (let current = folder; !(await exists(current)); current = path.dirname(current)) {
      missing.unshift(current);
      if (path.dirname(current) === current) break;
    }
    for (const each of missing) {
      await mkdir(each).catch((cause: NodeJS.ErrnoException) => {
        if (cause.code !== "EEXIST") throw cause;
      });
    }
    throw error;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
