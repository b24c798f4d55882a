/**
 * Local file names for an API result's outputs. The keys of `output` and its URLs come from
 * the API, which runflow does not trust with its file system: every piece of a name taken
 * from them is reduced to one safe path segment here, and `outputPath` refuses any final
 * path outside its step's folder (docs/security.md).
 */
import path, { extname } from "node:path";
import { setOwn } from "../template/data.js";

/** One media file named in an API result's `output` object. */
export interface OutputFile {
  /** The output key: `video`, `image`, `videos`, `images`, or another key the model returns. */
  name: string;
  /** Position in a list output (0-based); undefined for a single value. */
  index: number | undefined;
  url: string;
  /** `STEP.EXT`, or `STEP-N.EXT` (1-based) for lists (SPEC §5); always one safe path segment. */
  fileName: string;
}

/** The longest piece of a file name taken from an API answer. */
const MAX_SEGMENT_CHARS = 64;

/**
 * `text` from outside reduced to one path segment that is safe on every platform: letters,
 * digits, `_`, `-` and inner dots only (anything else becomes `_`), no leading dot (so never
 * `.` or `..`), at most 64 characters; `fallback` when nothing is left.
 */
export function safeSegment(text: string, fallback: string): string {
  const reduced = text
    .normalize("NFKC")
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._-]+/, "")
    .slice(0, MAX_SEGMENT_CHARS)
    .replace(/[._-]+$/, "");
  return reduced === "" ? fallback : reduced;
}

/** A step's output file named `fileName` is not inside its folder: never written. */
export class UnsafeOutputPathError extends Error {}

/**
 * The absolute path of `fileName` in `folder`, refused unless it is a direct child of it.
 * Names from outputFilesOf always are; this is the last guard before the file system.
 */
export function outputPath(folder: string, fileName: string): string {
  const base = path.resolve(folder);
  const full = path.resolve(base, fileName);
  if (path.dirname(full) !== base || path.basename(full) !== fileName) {
    throw new UnsafeOutputPathError(
      `refused to write the output file ${JSON.stringify(fileName)}: it would land outside ${base}`,
    );
  }
  return full;
}

const DEFAULT_EXTENSION: Record<string, string> = {
  video: ".mp4",
  videos: ".mp4",
  image: ".png",
  images: ".png",
};

function extensionOf(url: string, key: string): string {
  let ext = "";
  try {
    ext = extname(new URL(url).pathname).toLowerCase();
  } catch {
    ext = "";
  }
  // Only short alphanumeric extensions: a path like `/result.v2/abc` must not name the file,
  // and nothing else of the URL ever does.
  if (/^\.[a-z0-9]{1,5}$/.test(ext)) return ext;
  return DEFAULT_EXTENSION[key] ?? ".bin";
}

/**
 * Lists the files an `output` object names, with the local file name each gets.
 * Non-URL values (numbers, nested objects) are not files and are skipped. Two outputs of one
 * step that would get the same file name (an image and a video list, say) are told apart by
 * their key, reduced to a safe segment; names still alike after that get `-2`, `-3`….
 */
export function outputFilesOf(stepId: string, output: Record<string, unknown> | undefined): OutputFile[] {
  if (!output) return [];
  const files: OutputFile[] = [];
  for (const [name, value] of Object.entries(output)) {
    if (typeof value === "string" && isHttpUrl(value)) {
      files.push({ name, index: undefined, url: value, fileName: `${stepId}${extensionOf(value, name)}` });
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => {
        if (typeof item === "string" && isHttpUrl(item)) {
          files.push({
            name,
            index,
            url: item,
            fileName: `${stepId}-${index + 1}${extensionOf(item, name)}`,
          });
        }
      });
    }
  }
  const seen = new Map<string, number>();
  for (const file of files) seen.set(file.fileName, (seen.get(file.fileName) ?? 0) + 1);
  for (const file of files) {
    if ((seen.get(file.fileName) ?? 0) > 1) {
      const ext = extname(file.fileName);
      const suffix = file.index === undefined ? "" : `-${file.index + 1}`;
      file.fileName = `${stepId}-${safeSegment(file.name, "output")}${suffix}${ext}`;
    }
  }
  const taken = new Set<string>();
  for (const file of files) {
    const ext = extname(file.fileName);
    const stem = file.fileName.slice(0, file.fileName.length - ext.length);
    for (let n = 2; taken.has(file.fileName); n++) file.fileName = `${stem}-${n}${ext}`;
    taken.add(file.fileName);
  }
  return files;
}

function isHttpUrl(value: string): boolean {
  return value.startsWith("https://") || value.startsWith("http://");
}

/** `files` as templates see it: the same keys as `output`, local paths instead of URLs. */
export function filesByName(
  entries: ReadonlyArray<{ name: string; index: number | undefined; path: string }>,
): Record<string, string | string[]> {
  const files: Record<string, string | string[]> = {};
  for (const entry of entries) {
    if (entry.index === undefined) {
      setOwn(files, entry.name, entry.path);
    } else {
      const earlier = Object.hasOwn(files, entry.name) ? files[entry.name] : undefined;
      const list = Array.isArray(earlier) ? earlier : [];
      list[entry.index] = entry.path;
      // A key like `__proto__` from the API is a plain own field here, never the prototype.
      setOwn(files, entry.name, list);
    }
  }
  return files;
}
