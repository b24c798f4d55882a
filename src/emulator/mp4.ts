/**
 * A real MP4 of any byte size: the embedded tiny clip followed by an ISO-BMFF `free` box
 * (which players skip) of zeros, streamed, so a 200 MB video costs no memory.
 */
import { TINY_MP4 } from "./tiny-video.js";
import { virtualFile, zeroParts, type VirtualFile } from "./virtual-file.js";

const BOX_HEADER = 8;
const LARGE_BOX_HEADER = 16;
/** Past this a box needs the 64-bit size form. */
const MAX_COMPACT_BOX = 0xffff_ffff;
/** Far beyond any media rule; keeps sizes exact in a double. */
export const MAX_MP4_BYTES = 64 * 1024 ** 3;

export const MIN_PADDED_MP4_BYTES = TINY_MP4.length + BOX_HEADER;

/** Why an MP4 of `totalBytes` cannot be made, or undefined. */
export function mp4SizeProblem(totalBytes: number): string | undefined {
  if (!Number.isSafeInteger(totalBytes) || totalBytes > MAX_MP4_BYTES) {
    return `bytes must be a whole number up to ${MAX_MP4_BYTES}`;
  }
  if (totalBytes === TINY_MP4.length || totalBytes >= MIN_PADDED_MP4_BYTES) return undefined;
  return `the smallest video is ${TINY_MP4.length} bytes; bytes must be exactly that or at least ${MIN_PADDED_MP4_BYTES}`;
}

function freeBoxHeader(boxSize: number): Buffer {
  if (boxSize <= MAX_COMPACT_BOX) {
    const header = Buffer.alloc(BOX_HEADER);
    header.writeUInt32BE(boxSize, 0);
    header.write("free", 4, "latin1");
    return header;
  }
  const header = Buffer.alloc(LARGE_BOX_HEADER);
  header.writeUInt32BE(1, 0);
  header.write("free", 4, "latin1");
  header.writeBigUInt64BE(BigInt(boxSize), 8);
  return header;
}

/** The tiny MP4, padded to exactly `totalBytes` (default: unpadded); check mp4SizeProblem first. */
export function mp4File(totalBytes: number = TINY_MP4.length): VirtualFile {
  const problem = mp4SizeProblem(totalBytes);
  if (problem) throw new RangeError(problem);
  const boxSize = totalBytes - TINY_MP4.length;
  if (boxSize === 0) return virtualFile("video/mp4", [{ bytes: TINY_MP4, repeat: 1 }]);
  const header = freeBoxHeader(boxSize);
  return virtualFile("video/mp4", [
    { bytes: TINY_MP4, repeat: 1 },
    { bytes: header, repeat: 1 },
    ...zeroParts(boxSize - header.length),
  ]);
}
