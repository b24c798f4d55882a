/**
 * A file described by its parts instead of held in memory: a header, then a run of repeated
 * bytes, then a trailer. The emulator's media can be hundreds of megabytes and still cost a
 * few kilobytes, and any byte range can be streamed.
 */

/** `bytes`, `repeat` times in a row. */
export interface FilePart {
  readonly bytes: Buffer;
  readonly repeat: number;
}

export interface VirtualFile {
  readonly contentType: string;
  readonly size: number;
  readonly parts: readonly FilePart[];
}

export function virtualFile(contentType: string, parts: readonly FilePart[]): VirtualFile {
  const kept = parts.filter((part) => part.bytes.length > 0 && part.repeat > 0);
  const size = kept.reduce((total, part) => total + part.bytes.length * part.repeat, 0);
  return { contentType, size, parts: kept };
}

const ZEROS = Buffer.alloc(64 * 1024);

/** `length` zero bytes, as parts that share one 64 KiB buffer. */
export function zeroParts(length: number): FilePart[] {
  const whole = Math.floor(length / ZEROS.length);
  const rest = length % ZEROS.length;
  return [
    { bytes: ZEROS, repeat: whole },
    { bytes: ZEROS.subarray(0, rest), repeat: 1 },
  ];
}

/** The bytes `start`..`end` (inclusive) of `file`, in chunks of at most one part's buffer. */
export function* readRange(file: VirtualFile, start: number, end: number): Generator<Buffer> {
  let partStart = 0;
  for (const part of file.parts) {
    const unit = part.bytes.length;
    const partEnd = partStart + unit * part.repeat;
    if (partEnd > start) {
      if (partStart > end) return;
      const from = Math.max(start, partStart) - partStart;
      const to = Math.min(end + 1, partEnd) - partStart;
      for (let copyStart = Math.floor(from / unit) * unit; copyStart < to; copyStart += unit) {
        const a = Math.max(from - copyStart, 0);
        const b = Math.min(to - copyStart, unit);
        yield a === 0 && b === unit ? part.bytes : part.bytes.subarray(a, b);
      }
    }
    partStart = partEnd;
  }
}

/** The whole file in one buffer: for small files and tests only. */
export function readAll(file: VirtualFile): Buffer {
  return Buffer.concat([...readRange(file, 0, file.size - 1)]);
}
