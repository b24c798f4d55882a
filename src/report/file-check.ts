/**
 * Whether a file a run recorded is still the one it wrote (the report model's `checkFile`):
 * a later run, or a person, may have put another file at the same path. The size is compared
 * first (a stat), then the sha256 of the content, read in chunks so a large video is never
 * held in memory. Synchronous, like the rest of the report command.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { FileCheck, RecordedFile } from "./model.js";

const CHUNK_BYTES = 1 << 20;

function sha256Of(file: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  const fd = openSync(file, "r");
  try {
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

export function checkRecordedFile(file: string, recorded: RecordedFile): FileCheck {
  let size: number;
  try {
    const info = statSync(file);
    if (!info.isFile()) return "missing";
    size = info.size;
  } catch {
    return "missing";
  }
  if (recorded.bytes !== undefined && recorded.bytes !== size) return "changed";
  if (recorded.sha256 === undefined) return "same";
  try {
    return sha256Of(file) === recorded.sha256 ? "same" : "changed";
  } catch {
    return "missing";
  }
}
