/**
 * Real PNG files of any pixel size, solid colour so they compress to almost nothing, made
 * with node:zlib. Padded to an exact byte size with private ancillary chunks (`paDd`), which
 * every decoder skips, so a "17 MB image" for a size rule is still a valid image.
 */
import { once } from "node:events";
import { createDeflate } from "node:zlib";
import { crc32 } from "./crc32.js";
import { virtualFile, type FilePart, type VirtualFile } from "./virtual-file.js";

export const MAX_PNG_SIDE = 16_384;
/** Bounds the time spent compressing one image (about a second at the limit). */
export const MAX_PNG_PIXELS = 50_000_000;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOUR = [0x3c, 0x7d, 0xb4] as const;
const CHUNK_OVERHEAD = 12;

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc32(head.subarray(4), data), 0);
  return Buffer.concat([head, data, tail]);
}

const IEND = chunk("IEND", Buffer.alloc(0));

/** Row after row of the same colour, deflated as a stream so a large image never sits in memory raw. */
async function deflatedRows(width: number, height: number): Promise<Buffer> {
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) row.set(COLOUR, 1 + x * 3);
  const deflate = createDeflate();
  const compressed: Buffer[] = [];
  deflate.on("data", (data: Buffer) => compressed.push(data));
  const ended = once(deflate, "end");
  for (let y = 0; y < height; y++) {
    if (!deflate.write(row)) await once(deflate, "drain");
  }
  deflate.end();
  await ended;
  return Buffer.concat(compressed);
}

async function encodeSolidPng(width: number, height: number): Promise<Buffer> {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  return Buffer.concat([
    SIGNATURE,
    chunk("IHDR", header),
    chunk("IDAT", await deflatedRows(width, height)),
    IEND,
  ]);
}

const recent = new Map<string, Promise<Buffer>>();
const RECENT_LIMIT = 16;

/** A W×H PNG; the last few sizes asked for are remembered. */
export function solidPng(width: number, height: number): Promise<Buffer> {
  const key = `${width}x${height}`;
  let png = recent.get(key);
  if (png) {
    recent.delete(key);
  } else {
    png = encodeSolidPng(width, height);
    png.catch(() => recent.delete(key));
  }
  recent.set(key, png);
  if (recent.size > RECENT_LIMIT) recent.delete(recent.keys().next().value as string);
  return png;
}

/** Why W×H cannot be made, or undefined. */
export function pngDimensionsProblem(width: number, height: number): string | undefined {
  const side = (n: number) => Number.isInteger(n) && n >= 1 && n <= MAX_PNG_SIDE;
  if (!side(width) || !side(height))
    return `width and height must be whole numbers from 1 to ${MAX_PNG_SIDE}`;
  if (width * height > MAX_PNG_PIXELS) return `width × height must be at most ${MAX_PNG_PIXELS} pixels`;
  return undefined;
}

/** Why `png` cannot be padded to `totalBytes`, or undefined. */
export function pngPaddingProblem(png: Buffer, totalBytes: number): string | undefined {
  if (totalBytes === png.length || totalBytes >= png.length + CHUNK_OVERHEAD) return undefined;
  return `this image is ${png.length} bytes unpadded; bytes must be exactly that or at least ${png.length + CHUNK_OVERHEAD}`;
}

const PAD_CHUNK_SIZE = 64 * 1024;
const FULL_PAD_CHUNK = chunk("paDd", Buffer.alloc(PAD_CHUNK_SIZE - CHUNK_OVERHEAD));

function paddingParts(length: number): FilePart[] {
  if (length === 0) return [];
  const fullChunks = Math.floor((length - CHUNK_OVERHEAD) / PAD_CHUNK_SIZE);
  const rest = length - fullChunks * PAD_CHUNK_SIZE - CHUNK_OVERHEAD;
  return [
    { bytes: FULL_PAD_CHUNK, repeat: fullChunks },
    { bytes: chunk("paDd", Buffer.alloc(rest)), repeat: 1 },
  ];
}

/** `png` as a file of exactly `totalBytes` (default: its own size); check pngPaddingProblem first. */
export function pngFile(png: Buffer, totalBytes = png.length): VirtualFile {
  const problem = pngPaddingProblem(png, totalBytes);
  if (problem) throw new RangeError(problem);
  const beforeEnd = png.subarray(0, png.length - IEND.length);
  return virtualFile("image/png", [
    { bytes: beforeEnd, repeat: 1 },
    ...paddingParts(totalBytes - png.length),
    { bytes: IEND, repeat: 1 },
  ]);
}
