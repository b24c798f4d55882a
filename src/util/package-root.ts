/**
 * The folder runflow is installed in (or checked out to): the nearest folder above this
 * module whose package.json is runflow's. The same code runs from src/ (vitest), dist/ (tsc)
 * and dist/bin/ (the bundle), and dist/bin/ holds a package.json of its own (it marks the
 * bundle's files as CommonJS: scripts/bundle-cli.js), so any package.json is not enough.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

function isRunflowPackage(dir: string): boolean {
  const file = path.join(dir, "package.json");
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name === "runflow";
  } catch {
    return false;
  }
}

export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!isRunflowPackage(dir)) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`runflow's package.json was not found above ${import.meta.url}`);
    dir = parent;
  }
  root = dir;
  return dir;
}
