/**
 * The report of one run, built from what the state database holds (pure: no I/O; whether
 * a downloaded file is still on disk is asked through `fileExists`). The three renderers
 * (JSON, Markdown, HTML) all draw this one model.
 */
import { addCost, costToJson, NO_COST, type CostTotal } from "../cost/money.js";
import { isEmulatorOrigin } from "../api/origin.js";
import { DISPLAY_GROUP, RETRYABLE_STATES } from "../engine/states.js";
import type {
  AttemptRecord,
  InputCaptureRecord,
  OutputRecord,
  RunKind,
  RunRecord,
  RunStatus,
  StepKind,
  StepRecord,
  StoredStepState,
} from "../store/types.js";
import { readStepInput, type ParameterInput, type PromptInput, type StepInput } from "../plan/step-input.js";
import { mediaKindOf, type MediaKind } from "../models/media-kind.js";
import { relativeHref } from "./media.js";
import { GROUP_ORDER, type DisplayGroup } from "../render/vocabulary.js";

export type { DisplayGroup };
/** The header groups, in the order every view shows them (SPEC §6): the vocabulary's order. */
export const DISPLAY_GROUPS = GROUP_ORDER;

/** Bumped when a field of the JSON report changes meaning or disappears. */
export const REPORT_FORMAT_VERSION = 1;

/** A file shown in the report: an input (source image or video) or a step's output. */
export interface MediaRef {
  /** The input field or output key: `image_url`, `video`, `images` … */
  name: string;
  /** Position in a list (0-based); undefined for a single value. */
  index: number | undefined;
  kind: MediaKind;
  /** Where the file came from (an API URL, the user's media host). */
  url: string | undefined;
  /** The downloaded file (absolute), when there is one. */
  path: string | undefined;
  /**
   * What the report links to: the local file relative to the report's folder when there
   * is one on disk, otherwise the URL (undefined when neither exists).
   */
  href: string | undefined;
  /** `href` points at a local file. */
  local: boolean;
  /** A download was recorded but the file is no longer on disk. */
  missing: boolean;
  /**
   * A file is on disk at the recorded path, but it is not the one this run recorded (its
   * size or sha256 differs): it is neither linked nor shown, since it is some other file.
   */
  changed: boolean;
  bytes: number | undefined;
  sha256: string | undefined;
  /**
   * The run whose step made this file: the report's run, or for a reused step the earlier
   * run it was taken over from (the file itself is this run's own link or copy of it).
   */
  producedBy: string | undefined;
  /**
   * Inputs: `path` is the copy of the URL the run captured when the step was submitted
   * (`producedBy` says which run: a reused step shows the capture of the run that made it).
   * Undefined for outputs.
   */
  captured: boolean | undefined;
  /** Inputs: why the run could not capture the URL (a 404, an HTML page, too large …). */
  captureError: string | undefined;
}

export interface StepReport {
  /** `JOB/KEY/STEP`. */
  address: string;
  stepId: string;
  kind: StepKind;
  model: string | undefined;
  state: StoredStepState;
  group: DisplayGroup;
  /** Attempts started (0: never submitted). */
  attempts: number;
  requestId: string | undefined;
  /** The earlier run whose result this step took over. */
  reusedFromRun: string | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  durationMs: number | undefined;
  error: string | undefined;
  prompts: PromptInput[];
  /** Input media: the source image or video. */
  inputs: MediaRef[];
  parameters: ParameterInput[];
  /** Run steps: the argument vector. */
  command: string[] | undefined;
  outputs: MediaRef[];
  /** Run steps: the captured standard output (cut to its last part). */
  stdout: string | undefined;
  /** What its attempts in this run cost (SPEC §9); undefined when none was billed. */
  cost: ReportCost | undefined;
}

/** USD reported (null when no attempt reported a cost), and billed attempts that reported none (unknown). */
export interface ReportCost {
  usd: number | null;
  unknown: number;
}

export type JobStatus = "succeeded" | "failed" | "unfinished";

export interface JobReport {
  /** `JOB/KEY`. */
  key: string;
  jobId: string;
  instanceKey: string;
  /** failed when any step failed (or was blocked, cancelled …); unfinished while a step has not ended. */
  status: JobStatus;
  steps: StepReport[];
  /** Its steps' costs summed; undefined when none was billed. */
  cost: ReportCost | undefined;
}

export interface ReportCounts {
  steps: number;
  jobs: number;
  failedJobs: number;
  byGroup: Record<DisplayGroup, number>;
  /** Only states that hold a step. */
  byState: Partial<Record<StoredStepState, number>>;
}

export interface FailedStep {
  address: string;
  job: string;
  state: StoredStepState;
  attempts: number;
  error: string | undefined;
}

export interface RunReport {
  formatVersion: number;
  generatedAt: number;
  run: {
    id: string;
    workflow: string;
    workflowFile: string;
    kind: RunKind;
    parentRunId: string | undefined;
    /** The API it ran at (api/origin.ts); undefined when not recorded. */
    apiOrigin: string | undefined;
    /** It ran against an emulator: its outputs are test media, nothing was billed. */
    emulator: boolean;
    /** The later run that finished the steps it left unfinished. */
    finishedByRun: string | undefined;
    status: RunStatus;
    exitCode: number | undefined;
    startedAt: number;
    finishedAt: number | undefined;
    elapsedMs: number | undefined;
    /** Every attempt's cost summed; undefined when none was billed. */
    cost: ReportCost | undefined;
  };
  counts: ReportCounts;
  failed: FailedStep[];
  /** How to re-run the failed steps; undefined when nothing is retryable. */
  retry: { command: string; steps: number } | undefined;
  /** Steps whose submission may exist and be billed: `retry` leaves them alone unless told. */
  unknownSteps: number;
  /** In plan order. */
  jobs: JobReport[];
}

export interface BuildReportOptions {
  /** Absolute folder the report is written to: local files are linked relative to it. */
  reportDir: string;
  /** When the report is made (ms since the epoch). */
  now: number;
  /** The command that re-runs the failed steps (default `runflow retry RUN`). */
  retryCommand?: string | undefined;
  /** The run's attempts: a step without its own start time started with its first attempt. */
  attempts?: readonly AttemptRecord[] | undefined;
  /** Whether a downloaded file is still there (default: assume it is); `checkFile` wins when given. */
  fileExists?: ((absolutePath: string) => boolean) | undefined;
  /** Whether a downloaded file is still there and still the one recorded (report/file-check.ts). */
  checkFile?: ((absolutePath: string, recorded: RecordedFile) => FileCheck) | undefined;
  /** What each step's attempts cost (store.stepCosts). */
  costs?: ReadonlyMap<string, CostTotal> | undefined;
  /**
   * The input stills captured by the run, and by the runs its reused steps came from
   * (store.getInputCaptures): an input URL is shown from its captured copy.
   */
  captures?: readonly InputCaptureRecord[] | undefined;
}

function reportCost(cost: CostTotal | undefined): ReportCost | undefined {
  return cost && (cost.known > 0 || cost.unknown > 0) ? costToJson(cost) : undefined;
}

/** What the run recorded of a file it wrote. */
export interface RecordedFile {
  bytes: number | undefined;
  sha256: string | undefined;
}

/** `same`: the recorded file is there; `missing`: nothing is; `changed`: another file is. */
export type FileCheck = "same" | "missing" | "changed";

/** Captured output kept in the report; the rest stays in the state database. */
const MAX_STDOUT_CHARS = 4_000;

export function buildRunReport(
  run: RunRecord,
  steps: readonly StepRecord[],
  outputs: readonly OutputRecord[],
  options: BuildReportOptions,
): RunReport {
  const fileExists = options.fileExists ?? (() => true);
  const checkFile =
    options.checkFile ?? ((file: string): FileCheck => (fileExists(file) ? "same" : "missing"));
  const outputsByAddress = groupOutputs(outputs);
  const producerOf = new Map<string, string>();
  for (const step of steps) producerOf.set(step.address, step.reusedFromRun ?? run.id);
  const firstAttemptAt = new Map<string, number>();
  for (const attempt of options.attempts ?? []) {
    const earliest = firstAttemptAt.get(attempt.address);
    if (earliest === undefined || attempt.startedAt < earliest)
      firstAttemptAt.set(attempt.address, attempt.startedAt);
  }
  // An input URL that some step of this run produced and downloaded (a chained step's source
  // video) is shown from the local file.
  const localByUrl = new Map<string, OutputRecord>();
  for (const output of outputs) if (output.path !== undefined) localByUrl.set(output.url, output);
  // Captured input stills, by run and URL.
  const capturesByRun = new Map<string, Map<string, InputCaptureRecord>>();
  for (const capture of options.captures ?? []) {
    const byUrl = capturesByRun.get(capture.runId) ?? new Map<string, InputCaptureRecord>();
    byUrl.set(capture.url, capture);
    capturesByRun.set(capture.runId, byUrl);
  }
  // A reused step was submitted by the run it came from: that run captured its inputs.
  const captureOf = (step: StepRecord, url: string): InputCaptureRecord | undefined =>
    capturesByRun.get(run.id)?.get(url) ??
    (step.reusedFromRun === undefined ? undefined : capturesByRun.get(step.reusedFromRun)?.get(url));

  const toMedia = (
    name: string,
    index: number | undefined,
    url: string | undefined,
    downloaded: OutputRecord | undefined,
  ): MediaRef => {
    const path = downloaded?.path;
    const check =
      path === undefined
        ? undefined
        : checkFile(path, { bytes: downloaded?.bytes, sha256: downloaded?.sha256 });
    const present = path !== undefined && check === "same";
    return {
      name,
      index,
      kind: mediaKindOf(path ?? url ?? "", name),
      url,
      path,
      href: present ? relativeHref(options.reportDir, path) : url,
      local: present,
      missing: check === "missing",
      changed: check === "changed",
      bytes: downloaded?.bytes,
      sha256: downloaded?.sha256,
      producedBy: downloaded === undefined ? undefined : producerOf.get(downloaded.address),
      captured: undefined,
      captureError: undefined,
    };
  };

  const toInput = (step: StepRecord, name: string, index: number | undefined, url: string): MediaRef => {
    const produced = localByUrl.get(url);
    if (produced) return { ...toMedia(name, index, url, produced), captured: false };
    const capture = captureOf(step, url);
    if (capture?.path === undefined) {
      return { ...toMedia(name, index, url, undefined), captured: false, captureError: capture?.error };
    }
    const media = toMedia(name, index, url, {
      runId: capture.runId,
      address: capture.address,
      name,
      index,
      url,
      path: capture.path,
      bytes: capture.bytes,
      sha256: capture.sha256,
      createdAt: capture.createdAt,
    });
    return { ...media, captured: true, producedBy: capture.runId };
  };

  const jobs = new Map<string, JobReport>();
  const jobCosts = new Map<string, CostTotal>();
  let runCost: CostTotal = NO_COST;
  for (const step of steps) {
    const input: StepInput = readStepInput(step.kind, step.input);
    const startedAt = step.startedAt ?? firstAttemptAt.get(step.address);
    const report: StepReport = {
      address: step.address,
      stepId: step.stepId,
      kind: step.kind,
      model: step.model,
      state: step.state,
      group: DISPLAY_GROUP[step.state],
      attempts: step.attempt,
      requestId: step.requestId,
      reusedFromRun: step.reusedFromRun,
      startedAt,
      finishedAt: step.finishedAt,
      durationMs:
        startedAt !== undefined && step.finishedAt !== undefined ? step.finishedAt - startedAt : undefined,
      error: step.error,
      prompts: input.prompts,
      inputs: input.media.map((media) => toInput(step, media.name, media.index, media.url)),
      parameters: input.parameters,
      command: input.command,
      outputs: (outputsByAddress.get(step.address) ?? []).map((output) =>
        // A run step's "URL" is the file itself: only the local path means anything.
        toMedia(output.name, output.index, output.url.startsWith("file:") ? undefined : output.url, output),
      ),
      stdout: step.stdout === undefined ? undefined : lastChars(step.stdout, MAX_STDOUT_CHARS),
      cost: reportCost(options.costs?.get(step.address)),
    };
    const key = `${step.jobId}/${step.instanceKey}`;
    let job = jobs.get(key);
    if (!job) {
      job = {
        key,
        jobId: step.jobId,
        instanceKey: step.instanceKey,
        status: "succeeded",
        steps: [],
        cost: undefined,
      };
      jobs.set(key, job);
    }
    job.steps.push(report);
    const stepCost = options.costs?.get(step.address);
    if (stepCost) {
      jobCosts.set(key, addCost(jobCosts.get(key) ?? NO_COST, stepCost));
      runCost = addCost(runCost, stepCost);
    }
  }
  for (const [key, cost] of jobCosts) jobs.get(key)!.cost = reportCost(cost);
  for (const job of jobs.values()) job.status = jobStatusOf(job.steps);

  const allSteps = [...jobs.values()].flatMap((job) => job.steps);
  const failed: FailedStep[] = allSteps
    .filter((step) => step.group === "failed")
    .map((step) => ({
      address: step.address,
      job: step.address.slice(0, step.address.lastIndexOf("/")),
      state: step.state,
      attempts: step.attempts,
      error: step.error,
    }));
  const retryable = allSteps.filter((step) => RETRYABLE_STATES.has(step.state)).length;

  return {
    formatVersion: REPORT_FORMAT_VERSION,
    generatedAt: options.now,
    run: {
      id: run.id,
      workflow: run.workflowName,
      workflowFile: run.workflowFile,
      kind: run.kind,
      parentRunId: run.parentRunId,
      apiOrigin: run.apiOrigin,
      emulator: isEmulatorOrigin(run.apiOrigin),
      finishedByRun: run.finishedByRun,
      status: run.status,
      exitCode: run.exitCode,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      elapsedMs: run.finishedAt === undefined ? undefined : run.finishedAt - run.startedAt,
      cost: reportCost(runCost),
    },
    counts: countSteps(
      allSteps,
      jobs.size,
      [...jobs.values()].filter((job) => job.status === "failed").length,
    ),
    failed,
    retry:
      retryable > 0
        ? { command: options.retryCommand ?? `runflow retry ${run.id}`, steps: retryable }
        : undefined,
    unknownSteps: allSteps.filter((step) => step.state === "unknown").length,
    jobs: [...jobs.values()],
  };
}

function jobStatusOf(steps: readonly StepReport[]): JobStatus {
  if (steps.some((step) => step.group === "failed")) return "failed";
  if (steps.every((step) => step.group === "done" || step.group === "reused")) return "succeeded";
  return "unfinished";
}

function countSteps(steps: readonly StepReport[], jobs: number, failedJobs: number): ReportCounts {
  const byGroup = Object.fromEntries(DISPLAY_GROUPS.map((group) => [group, 0])) as Record<
    DisplayGroup,
    number
  >;
  const byState: Partial<Record<StoredStepState, number>> = {};
  for (const step of steps) {
    byGroup[step.group] += 1;
    byState[step.state] = (byState[step.state] ?? 0) + 1;
  }
  return { steps: steps.length, jobs, failedJobs, byGroup, byState };
}

function groupOutputs(outputs: readonly OutputRecord[]): Map<string, OutputRecord[]> {
  const byAddress = new Map<string, OutputRecord[]>();
  for (const output of outputs) {
    const list = byAddress.get(output.address) ?? [];
    list.push(output);
    byAddress.set(output.address, list);
  }
  for (const list of byAddress.values()) {
    list.sort((a, b) => a.name.localeCompare(b.name) || (a.index ?? -1) - (b.index ?? -1));
  }
  return byAddress;
}

function lastChars(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}
