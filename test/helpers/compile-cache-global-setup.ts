/**
 * Once per `vitest run`: the CLIs the tests spawn keep their code cache in a folder of this
 * run, removed at its end, not in the user's (~/.cache/runflow/compile), so a test run neither
 * leaves files there nor depends on what an earlier build left. A folder given by the caller
 * (RUNFLOW_COMPILE_CACHE, `off` included) is kept. Tests of the cache itself choose their own.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export default function setup(): (() => void) | undefined {
  if (process.env.RUNFLOW_COMPILE_CACHE !== undefined) return undefined;
  const folder = mkdtempSync(path.join(os.tmpdir(), "runflow-test-compile-cache-"));
  // The test workers start after this, with this environment; every CLI they spawn inherits it.
  process.env.RUNFLOW_COMPILE_CACHE = folder;
  return () => rmSync(folder, { recursive: true, force: true });
}
