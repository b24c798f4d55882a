/** What kind of media a file or URL holds, and how a report links to a local file. */
import path from "node:path";
import { pathToFileURL } from "node:url";

export type MediaKind = "image" | "video" | "file";

const VIDEO_EXTENSIONS = new Set([".mp4", ".m4v", ".mov", ".webm", ".mkv"]);
const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif", ".bmp"]);

function extensionOf(location: string): string {
  let pathname = location;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    try {
      pathname = new URL(location).pathname;
    } catch {
      pathname = location;
    }
  }
  return path.extname(pathname).toLowerCase();
}

/**
 * The kind of a file by its extension; without a telling extension, by the name of the
 * field it came from (`video`, `image_url`, `videos` …).
 */
export function mediaKindOf(location: string, fieldName = ""): MediaKind {
  const ext = extensionOf(location);
  if (VIDEO_EXTENSIONS.has(ext)) return "video";
  if (IMAGE_EXTENSIONS.has(ext)) return "image";
  const name = fieldName.toLowerCase();
  if (name.includes("video")) return "video";
  if (name.includes("image")) return "image";
  return "file";
}

export function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/**
 * The `src`/`href` of a local file as seen from the report's folder: relative, so the
 * report keeps working when the folder holding both is moved or opened from disk, and
 * percent-encoded per segment so no file name can break out of the attribute or URL.
 */
export function relativeHref(fromDir: string, absolutePath: string): string {
  const relative = path.relative(fromDir, absolutePath);
  // Another drive (Windows) has no relative path: an absolute file URL still works locally.
  if (path.isAbsolute(relative)) return pathToFileURL(absolutePath).href;
  return relative.split(path.sep).map(encodeURIComponent).join("/");
}
