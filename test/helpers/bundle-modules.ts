/**
 * What a loaded file of the CLI's bundle (dist/bin/) holds: the modules esbuild put in it,
 * from dist/bin/meta.json (written by scripts/bundle-cli.js), as paths on disk — so that
 * tests assert what a command loads by module (`/node_modules/pg/`), bundled or not.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "./spawn-cli.js";

export const BUNDLE_DIR = path.join(REPO_ROOT, "dist", "bin");

let meta: Record<string, string[]> | undefined;

/** A loaded file of the bundle stands for every module in it; any other file for itself. */
export function unbundled(loaded: string): string[] {
  const name = loaded.replace(/^file:\/\//, "");
  if (path.dirname(name) !== BUNDLE_DIR) return [loaded];
  meta ??= JSON.parse(readFileSync(path.join(BUNDLE_DIR, "meta.json"), "utf8")) as Record<string, string[]>;
  return (meta[path.basename(name)] ?? []).map((input) => path.join(REPO_ROOT, input));
}
