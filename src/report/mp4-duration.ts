/**
 * The duration of an MP4/MOV file, read from its movie header (`moov/mvhd`) without any
 * tool: the report shows it on a video's tile even where ffmpeg is absent. Only the box
 * headers and the `moov` box are read, so a large video costs a few reads.
 */
import { open, type FileHandle } from "node:fs/promises";

/** A `moov` larger than this is not read (it holds the sample tables of hours of video). */
const MAX_MOOV_BYTES = 16 * 1024 * 1024;
/** Top-level boxes walked before giving up (a real file has a handful). */
const MAX_TOP_LEVEL_BOXES = 64;

/** Milliseconds, or undefined when the file is not an MP4 that says its duration. */
export async function mp4DurationMs(file: string): Promise<number | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, "r");
    const { size } = await handle.stat();
    const moov = await findTopLevelBox(handle, size, "moov");
    if (!moov) return undefined;
    const body = Buffer.alloc(moov.size);
    await handle.read(body, 0, moov.size, moov.start);
    return durationFromMoov(body);
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

async function findTopLevelBox(
  handle: FileHandle,
  fileSize: number,
  type: string,
): Promise<{ start: number; size: number } | undefined> {
  const header = Buffer.alloc(16);
  let offset = 0;
  for (let boxes = 0; boxes < MAX_TOP_LEVEL_BOXES && offset + 8 <= fileSize; boxes++) {
    const { bytesRead } = await handle.read(header, 0, 16, offset);
    if (bytesRead < 8) return undefined;
    let boxSize = header.readUInt32BE(0);
    let headerSize = 8;
    if (boxSize === 1) {
      if (bytesRead < 16) return undefined;
      boxSize = Number(header.readBigUInt64BE(8));
      headerSize = 16;
    } else if (boxSize === 0) {
      boxSize = fileSize - offset; // the box runs to the end of the file
    }
    if (boxSize < headerSize) return undefined;
    if (header.toString("latin1", 4, 8) === type) {
      const size = boxSize - headerSize;
      return size <= MAX_MOOV_BYTES ? { start: offset + headerSize, size } : undefined;
    }
    offset += boxSize;
  }
  return undefined;
}

/** `mvhd` is a direct child of `moov`: version 0 has 32-bit fields, version 1 64-bit ones. */
function durationFromMoov(moov: Buffer): number | undefined {
  let offset = 0;
  while (offset + 8 <= moov.length) {
    const size = moov.readUInt32BE(offset);
    if (size < 8 || offset + size > moov.length) return undefined;
    if (moov.toString("latin1", offset + 4, offset + 8) === "mvhd") {
      const box = moov.subarray(offset + 8, offset + size);
      const version = box[0];
      if (version === 0 && box.length >= 20) {
        return toMs(box.readUInt32BE(16), box.readUInt32BE(12));
      }
      if (version === 1 && box.length >= 32) {
        return toMs(Number(box.readBigUInt64BE(24)), box.readUInt32BE(20));
      }
      return undefined;
    }
    offset += size;
  }
  return undefined;
}

function toMs(duration: number, timescale: number): number | undefined {
  if (timescale === 0) return undefined;
  return Math.round((duration / timescale) * 1000);
}
