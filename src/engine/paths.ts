import path from "node:path";

/** The deepest folder that holds every one of `folders` (absolute paths); undefined for none. */
export function commonFolder(folders: Iterable<string>): string | undefined {
  let common: string[] | undefined;
  for (const folder of folders) {
    const parts = folder.split(path.sep);
    if (!common) {
      common = parts;
      continue;
    }
    let same = 0;
    while (same < common.length && same < parts.length && common[same] === parts[same]) same++;
    if (same < common.length) common = common.slice(0, same);
  }
  if (!common) return undefined;
  return common.join(path.sep) || path.sep;
}
