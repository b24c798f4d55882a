/** How a report links to a local file (what kind of media it is: models/media-kind.ts). */
import path from "node:path";
import { pathToFileURL } from "node:url";

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
