import { extname } from "node:path";

/** One media file named in an API result's `output` object. */
export interface OutputFile {
  /** The output key: `video`, `image`, `videos`, `images`, or another key the model returns. */
  name: string;
  /** Position in a list output (0-based); undefined for a single value. */
  index: number | undefined;
  url: string;
  /** `STEP.EXT`, or `STEP-N.EXT` (1-based) for lists (SPEC §5). */
  fileName: string;
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
  // Only short alphanumeric extensions: a path like `/result.v2/abc` must not name the file.
  if (/^\.[a-z0-9]{1,5}$/.test(ext)) return ext;
  return DEFAULT_EXTENSION[key] ?? ".bin";
}

/**
 * Lists the files an `output` object names, with the local file name each gets.
 * Non-URL values (numbers, nested objects) are not files and are skipped. Two outputs of one
 * step that would get the same file name (an image and a video list, say) are told apart by
 * their key.
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
      file.fileName = `${stepId}-${file.name}${suffix}${ext}`;
    }
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
      files[entry.name] = entry.path;
    } else {
      const list = Array.isArray(files[entry.name]) ? (files[entry.name] as string[]) : [];
      list[entry.index] = entry.path;
      files[entry.name] = list;
    }
  }
  return files;
}
