/**
 * What kind of media a file or URL holds, by its extension or the name of its field: the
 * report shows it, and input captures keep only pictures.
 */
import path from "node:path";

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
