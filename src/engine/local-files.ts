/** Small file helpers of the engine: hashing, sizes, and atomic links and copies (temporary file, then rename). */
import { createHash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { copyFile, link, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { onDisk } from "../util/disk-errors.js";
import { makeFolder, newPartPath, partFinished, prepareFolder } from "../util/part-files.js";

export interface FileFacts {
  bytes: number;
  sha256: string;
}

/** Size and sha256 of a file, streamed (a large video is never held in memory). */
export async function hashFile(file: string): Promise<FileFacts> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    bytes += chunk.byteLength;
    hash.update(chunk);
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** The size of a regular file, or undefined when there is none at `file`. */
export async function regularFileSize(file: string): Promise<number | undefined> {
  try {
    const info = await stat(file);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Puts the file `from` at `to` without copying its bytes when the file system allows: a hard
 * link (a reused gigabyte costs nothing), else a copy-on-write clone, else a copy (FAT, some
 * SMB/NFS shares, another device). Through a temporary part and a rename, so `to` is
 * replaced in one step (a reader sees the old file or the new, never none or half) and a
 * file that was at `to` keeps its content under its other names.
 */
export async function linkOrCopyAtomic(from: string, to: string): Promise<void> {
  // Made every time (someone may have removed it mid-run); swept of leftovers once.
  const folder = path.dirname(to);
  await onDisk(folder, () => makeFolder(folder));
  await onDisk(folder, () => prepareFolder(folder));
  const temporary = newPartPath(to);
  try {
    try {
      await link(from, temporary);
    } catch {
      await onDisk(folder, () => copyFile(from, temporary, constants.COPYFILE_FICLONE));
    }
    await onDisk(folder, () => rename(temporary, to));
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  } finally {
    partFinished(temporary);
  }
}
