/**
 * The models runflow knows a schema for (SPEC §8): the built-in folder shipped with the
 * package, the project's own `schemas/models/`, then every `--models DIR`, later folders
 * overriding earlier ones by model id.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { distance } from "fastest-levenshtein";
import { UsageError } from "../errors.js";
import { packageRoot } from "../util/package-root.js";
import { parseModelEntry } from "./entry.js";
import { ModelSchemaError, UnknownModelError } from "./errors.js";
import type { ModelEntry } from "./types.js";

export interface ModelRegistry {
  get(modelId: string): ModelEntry | undefined;
  /** Every entry, sorted by model id. */
  list(): ModelEntry[];
  /** Known ids close to `modelId`, best first, for "did you mean". */
  suggest(modelId: string): string[];
}

export interface LoadModelRegistryOptions {
  /** Extra folders (`--models DIR`), in order; each must exist. */
  dirs?: readonly string[];
  /** Load the schemas shipped with runflow (default true). */
  includeBuiltin?: boolean;
  /** The project folder whose `schemas/models/` is loaded if present (default: process.cwd()). */
  cwd?: string;
}

const MODELS_SUBDIR = path.join("schemas", "models");

export function builtinModelsDir(): string {
  return path.join(packageRoot(), MODELS_SUBDIR);
}

function readEntryFile(file: string): ModelEntry {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ModelSchemaError(`${file}: not valid JSON (${reason})`, {
      hint: "fix the file, or remove it",
      cause: error,
    });
  }
  return parseModelEntry(data, file);
}

/** Entries of one folder by model id; two files claiming the same id in one folder is an error. */
function loadFolder(dir: string): Map<string, ModelEntry> {
  const entries = new Map<string, ModelEntry>();
  const files = readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort();
  for (const name of files) {
    const entry = readEntryFile(path.join(dir, name));
    const earlier = entries.get(entry.model_id);
    if (earlier) {
      throw new ModelSchemaError(
        `${entry.source}: model "${entry.model_id}" is also defined by ${earlier.source} in the same folder`,
        { hint: "keep one file per model" },
      );
    }
    entries.set(entry.model_id, entry);
  }
  return entries;
}

function sameFolder(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return path.resolve(a) === path.resolve(b);
  }
}

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The folders to load, in override order, without duplicates. */
function folders(options: LoadModelRegistryOptions): string[] {
  const cwd = options.cwd ?? process.cwd();
  const chosen: string[] = [];
  const add = (dir: string): void => {
    if (!chosen.some((existing) => sameFolder(existing, dir))) chosen.push(dir);
  };
  if (options.includeBuiltin ?? true) {
    const builtin = builtinModelsDir();
    if (isFolder(builtin)) add(builtin);
  }
  const project = path.resolve(cwd, MODELS_SUBDIR);
  if (isFolder(project)) add(project);
  for (const dir of options.dirs ?? []) {
    const resolved = path.resolve(cwd, dir);
    if (!isFolder(resolved)) {
      throw new UsageError(`--models ${dir}: no such folder (${resolved})`, {
        hint: "pass a folder that holds model schema files (*.json)",
      });
    }
    add(resolved);
  }
  return chosen;
}

/** Lowercased, with every run of non-alphanumerics as one `-`: ids that differ only in spelling meet. */
function looseForm(modelId: string): string {
  return modelId
    .toLowerCase()
    .replace(/[^a-z0-9/]+/g, "-")
    .replace(/(^|\/)-+|-+($|\/)/g, "$1$2");
}

function suggestIds(modelId: string, known: readonly string[]): string[] {
  const wanted = looseForm(modelId);
  const scored: { id: string; score: number }[] = [];
  for (const id of known) {
    const candidate = looseForm(id);
    const lastSegment = candidate.slice(candidate.lastIndexOf("/") + 1);
    const editDistance = distance(wanted, candidate);
    if (candidate === wanted) scored.push({ id, score: 0 });
    else if (editDistance <= Math.max(2, Math.floor(candidate.length / 4))) {
      scored.push({ id, score: editDistance });
    } else if (
      (wanted.length >= 4 && candidate.includes(wanted)) ||
      (lastSegment.length >= 4 && wanted.includes(lastSegment))
    ) {
      // "runway-aleph" or "hailuo-video-01-live" alone are meant as the full id.
      scored.push({ id, score: candidate.length });
    }
  }
  return scored
    .sort((a, b) => a.score - b.score || a.id.localeCompare(b.id))
    .slice(0, 3)
    .map(({ id }) => id);
}

/** Loads every model schema runflow can see. Synchronous: it is a handful of small files. */
export function loadModelRegistry(options: LoadModelRegistryOptions = {}): ModelRegistry {
  const byId = new Map<string, ModelEntry>();
  for (const dir of folders(options)) {
    for (const [id, entry] of loadFolder(dir)) byId.set(id, entry);
  }
  // Sorted only when listed: the first localeCompare of a process sets up ICU's collator
  // (about 4 ms), which apply, looking models up by id, need not pay before its first request.
  let sorted: ModelEntry[] | undefined;
  const list = (): ModelEntry[] =>
    (sorted ??= [...byId.values()].sort((a, b) => a.model_id.localeCompare(b.model_id)));
  return {
    get: (modelId) => byId.get(modelId),
    list: () => [...list()],
    suggest: (modelId) =>
      suggestIds(
        modelId,
        list().map((entry) => entry.model_id),
      ),
  };
}

/** The entry for `modelId`, or an error that says what is close and how to add a model. */
export function requireModel(registry: ModelRegistry, modelId: string): ModelEntry {
  const entry = registry.get(modelId);
  if (entry) return entry;
  throw new UnknownModelError(modelId, registry.suggest(modelId), {
    hint:
      `to add it, drop its catalog entry (a JSON file) into schemas/models/ or a --models folder, ` +
      `or run \`runflow models pull --search "${modelId}"\``,
  });
}
