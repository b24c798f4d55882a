/**
 * Reuse (SPEC §5): a step whose fingerprint matches a success of an earlier run of the same
 * workflow takes that result over instead of running. Its files are put in this run's own
 * folder (run-folders.ts): linked from the earlier run's file (copied where the file system
 * cannot link), or downloaded again from the output URL (still within `cache.ttl`). When
 * none of that works the result cannot be taken over and the step runs again.
 */
import { stat } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import type { PlannedStep, ReusableStep, ReuseReference } from "../plan/types.js";
import type { NewOutput, OutputRecord, StepRecord } from "../store/types.js";
import type { ExecutionContext } from "./context.js";
import { hashFile, linkOrCopyAtomic, type FileFacts } from "./local-files.js";
import { filesByName, outputFilesOf, outputPath } from "./output-files.js";
import { runFolder } from "./run-folders.js";
import { isSuccess } from "./states.js";
import { DiskError } from "../util/disk-errors.js";

export interface TakenOver {
  output?: Record<string, unknown> | undefined;
  files?: Record<string, string | string[]> | undefined;
  stdout?: string | undefined;
  requestId?: string | undefined;
}

/** An earlier step's record as a result to take over. */
export function reusableOf(record: StepRecord): ReusableStep {
  const reusable: ReusableStep = {
    runId: record.runId,
    address: record.address,
    finishedAt: record.finishedAt ?? record.updatedAt,
  };
  if (record.requestId !== undefined) reusable.requestId = record.requestId;
  if (record.output !== undefined) reusable.output = record.output;
  if (record.files !== undefined) reusable.files = record.files;
  if (record.stdout !== undefined) reusable.stdout = record.stdout;
  return reusable;
}

/**
 * The result a step planned as reused takes over, read from the earlier step's record now;
 * undefined when that record is gone or no longer a success (the step then looks again by
 * fingerprint).
 */
export async function referencedResult(
  context: ExecutionContext,
  reference: ReuseReference,
): Promise<ReusableStep | undefined> {
  const record = await context.deps.store.steps.get(reference.runId, reference.address);
  return record && isSuccess(record.state) ? reusableOf(record) : undefined;
}

/** The earlier success of the same fingerprint at the run's API origin still within `cache.ttl`, unless `--fresh`. */
export function findReusable(context: ExecutionContext, fingerprint: string): ReusableStep | undefined {
  if (context.options.fresh) return undefined;
  const notBefore = context.deps.clock.now() - context.options.cacheTtlMs;
  return context.prior.findSucceeded(context.workflowName, fingerprint, {
    apiOrigin: context.apiOrigin,
    notBefore,
  });
}

function outputKey(name: string, index: number | undefined): string {
  return index === undefined ? name : `${name}\u0000${index}`;
}

/**
 * Puts the earlier run's file at `wanted` (in this run's folder): linked, or copied where
 * the file system cannot link. Only the file that run recorded is taken over: a file since
 * changed (edited in place through the latest view, which shares its content) is not.
 * Its sha256 is read again only when the file was modified after it was recorded (or that
 * time is unknown): an untouched file is never newer than its record, and reading every
 * reused file made a resumed run of many steps twice as slow.
 * Returns its facts, or undefined when there is no such file.
 */
async function placeFromEarlier(
  wanted: string,
  earlier:
    | {
        path?: string | undefined;
        bytes?: number | undefined;
        sha256?: string | undefined;
        createdAt?: number;
      }
    | undefined,
): Promise<FileFacts | undefined> {
  if (earlier?.path === undefined || earlier.path === wanted) return undefined;
  const info = await stat(earlier.path).catch(() => undefined);
  if (!info?.isFile() || (earlier.bytes !== undefined && info.size !== earlier.bytes)) return undefined;
  let facts: FileFacts;
  if (earlier.sha256 !== undefined && earlier.createdAt !== undefined && info.mtimeMs <= earlier.createdAt) {
    facts = { bytes: info.size, sha256: earlier.sha256 };
  } else {
    facts = await hashFile(earlier.path);
    if (earlier.sha256 !== undefined && facts.sha256 !== earlier.sha256) return undefined;
  }
  await linkOrCopyAtomic(earlier.path, wanted);
  return facts;
}

/** Takes over a model step's result; undefined when its files can be neither found nor downloaded. */
export async function takeOverModelStep(
  context: ExecutionContext,
  step: PlannedStep,
  found: ReusableStep,
  signal: AbortSignal,
): Promise<TakenOver | undefined> {
  const { store, clock, download } = context.deps;
  const now = clock.now();
  const earlierRows = new Map<string, OutputRecord>();
  for (const row of await store.outputs.list(found.runId, found.address)) {
    earlierRows.set(outputKey(row.name, row.index), row);
  }
  const placed: { name: string; index: number | undefined; path: string }[] = [];
  const rows: NewOutput[] = [];
  for (const file of outputFilesOf(step.stepId, found.output)) {
    const row = {
      runId: context.runId,
      address: step.address,
      name: file.name,
      index: file.index,
      url: file.url,
      createdAt: now,
    };
    if (!context.options.download) {
      rows.push(row);
      continue;
    }
    let wanted: string;
    let facts: FileFacts | undefined;
    try {
      wanted = outputPath(runFolder(step.outputsDir, context.runId), file.fileName);
      facts = await placeFromEarlier(wanted, earlierRows.get(outputKey(file.name, file.index)));
      if (!facts) {
        const downloaded = await download(file.url, wanted, { signal, clock, random: context.deps.random });
        facts = { bytes: downloaded.bytes, sha256: downloaded.sha256 };
      }
    } catch (error) {
      // A full or read-only disk fails the step: running it again could not save its files either.
      if (signal.aborted || error instanceof DiskError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      context.notice(
        "warn",
        `${step.address}: cannot take over the result of run ${found.runId} (${reason}); running the step again`,
      );
      return undefined;
    }
    placed.push({ name: file.name, index: file.index, path: wanted });
    // Recorded once the file is in place: a file modified after its record is one to check again.
    rows.push({ ...row, path: wanted, bytes: facts.bytes, sha256: facts.sha256, createdAt: clock.now() });
  }
  await store.outputs.record(rows);
  return {
    output: found.output,
    files: context.options.download ? filesByName(placed) : undefined,
    requestId: found.requestId,
  };
}

/** Takes over a run step's named output files and stdout; undefined when a file is gone. */
export async function takeOverRunStep(
  context: ExecutionContext,
  outputNames: Readonly<Record<string, string>>,
  address: string,
  found: ReusableStep,
): Promise<TakenOver | undefined> {
  const { store, clock } = context.deps;
  const earlierRows = new Map(
    (await store.outputs.list(found.runId, found.address)).map((row) => [row.name, row]),
  );
  const rows: NewOutput[] = [];
  for (const [name, wanted] of Object.entries(outputNames)) {
    const earlierPath = found.files?.[name];
    const earlier =
      earlierRows.get(name) ?? (typeof earlierPath === "string" ? { path: earlierPath } : undefined);
    const facts = await placeFromEarlier(wanted, earlier).catch(() => undefined);
    if (!facts) return undefined;
    rows.push({
      runId: context.runId,
      address,
      name,
      url: pathToFileURL(wanted).href,
      path: wanted,
      bytes: facts.bytes,
      sha256: facts.sha256,
      createdAt: clock.now(),
    });
  }
  await store.outputs.record(rows);
  return { files: { ...outputNames }, stdout: found.stdout };
}
