/**
 * One run step (SPEC §4): a local program run from an argument vector — no shell — in this
 * run's folder of its instance's outputs (or its `cwd`), with the step's `env` over runflow's own
 * environment minus the API token, a timeout, killed when the run is interrupted or
 * cancelled. Its named `outputs` must exist afterwards; its stdout is kept for
 * `steps.ID.stdout`. Fingerprinted with the content of the files its arguments name, so
 * an unchanged input is reused and a changed one runs again.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { backoff } from "../api/retry-policy.js";
import { fingerprintRunStep } from "../plan/fingerprint.js";
import type { PlannedStep } from "../plan/types.js";
import type { NewOutput } from "../store/types.js";
import { pathValueGuard } from "../template/path-values.js";
import { asText, resolveValue, TemplateResolutionError } from "../template/resolve.js";
import { formatDuration } from "../util/duration.js";
import type { ExecutionContext, StepEnding } from "./context.js";
import type { ProcessOutcome } from "./deps.js";
import { hashFile, regularFileSize } from "./local-files.js";
import { findReusable, takeOverRunStep } from "./reuse.js";
import { inRunFolder, intoRunFolder, runFolder, stableText } from "./run-folders.js";
import { StepState } from "./states.js";
import { resultView } from "./step-results.js";

interface Invocation {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** Output name → absolute path. */
  outputs: Record<string, string>;
}

/** The most of a program's stdout kept (for templates and the database). */
const MAX_STDOUT_CHARS = 1_000_000;

/**
 * The argument vector, folder, environment and output paths, with earlier steps' results put
 * in, all in this run's folder of the instance (run-folders.ts): the default working folder,
 * a `cwd` inside the outputs folder and the outputs relative to it move there, and a path to
 * an earlier run's file (a reused step's result, resolved when planning) becomes this run's
 * own copy of it. A `cwd` outside the outputs folder is the user's, left as it is.
 */
function invocationOf(context: ExecutionContext, step: PlannedStep): Invocation {
  const deferred = new Set(step.deferredFields);
  const templateContext = deferred.size > 0 ? context.results.contextFor(step) : undefined;
  const resolve = (part: string, value: unknown): unknown =>
    templateContext && deferred.has(part)
      ? resolveValue(
          value,
          templateContext,
          part === "cwd" || part === "outputs" ? pathValueGuard : undefined,
        )
      : value;
  const runDir = runFolder(step.outputsDir, context.runId);
  const own = (text: string) => inRunFolder(text, step.outputsDir, runDir);
  const argv = (resolve("run", step.argv ?? []) as unknown[]).map((arg) => own(asText(arg)));
  const plannedCwd = own(
    deferred.has("cwd")
      ? path.resolve(step.outputsDir, asText(resolve("cwd", step.cwd)))
      : (step.cwd ?? step.outputsDir),
  );
  const cwd = intoRunFolder(plannedCwd, step.outputsDir, runDir);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(resolve("env", step.env ?? {}) as Record<string, unknown>)) {
    env[name] = own(asText(value));
  }
  const outputs: Record<string, string> = {};
  const pathsPending = deferred.has("cwd") || deferred.has("outputs");
  for (const [name, file] of Object.entries(
    resolve("outputs", step.outputNames ?? {}) as Record<string, unknown>,
  )) {
    // Planned relative to the planned folder: they move with it.
    const planned = own(pathsPending ? path.resolve(plannedCwd, asText(file)) : asText(file));
    outputs[name] = cwd === plannedCwd ? planned : intoRunFolder(planned, step.outputsDir, runDir);
  }
  return { argv, cwd, env, outputs };
}

/**
 * The run step's fingerprint: of its arguments and environment as they would read in the
 * instance's outputs folder, whichever run's folder they name (the same step over the same
 * files is the same step in every run), and of the content of the files its arguments name.
 */
async function fingerprintOf(step: PlannedStep, invocation: Invocation): Promise<string> {
  const stable = (text: string) => stableText(text, step.outputsDir);
  const hashes: Record<string, string> = {};
  for (const [arg, sha256] of Object.entries(await inputFileHashes(invocation))) hashes[stable(arg)] = sha256;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(invocation.env)) env[name] = stable(value);
  return fingerprintRunStep(invocation.argv.map(stable), env, hashes);
}

/**
 * sha256 of every argument that names an existing file (relative to the working folder):
 * the inputs a program reads. The step's own outputs are left out, or a second run would
 * see its own earlier output as a changed input.
 */
async function inputFileHashes(invocation: Invocation): Promise<Record<string, string>> {
  const outputs = new Set(Object.values(invocation.outputs));
  const hashes: Record<string, string> = {};
  for (const arg of invocation.argv) {
    if (arg === "" || Object.hasOwn(hashes, arg)) continue;
    const file = path.resolve(invocation.cwd, arg);
    if (outputs.has(file) || (await regularFileSize(file)) === undefined) continue;
    hashes[arg] = (await hashFile(file)).sha256;
  }
  return hashes;
}

function lastLines(text: string, count: number): string {
  const lines = text
    .trim()
    .split("\n")
    .filter((line) => line.trim() !== "");
  return lines.slice(-count).join(" | ");
}

export async function executeRunStep(context: ExecutionContext, step: PlannedStep): Promise<StepEnding> {
  const { tracker, deps, control } = context;
  const address = step.address;
  await tracker.transition(address, StepState.waiting);

  let invocation: Invocation;
  let fingerprint: string;
  try {
    invocation = invocationOf(context, step);
    await mkdir(invocation.cwd, { recursive: true });
    fingerprint = await fingerprintOf(step, invocation);
  } catch (error) {
    const message =
      error instanceof TemplateResolutionError ? `run: ${error.message}` : (error as Error).message;
    await tracker.transition(address, StepState.failed, { error: message });
    return "failed";
  }
  await deps.store.steps.update(context.runId, address, {
    updatedAt: deps.clock.now(),
    fingerprint,
    input: { argv: invocation.argv, cwd: invocation.cwd, env: invocation.env },
  });

  const found = findReusable(context, fingerprint);
  if (found) {
    const taken = await takeOverRunStep(context, invocation.outputs, address, found);
    if (taken) {
      context.results.record(address, resultView(taken));
      await tracker.transition(address, StepState.reused, {
        reusedFrom: found.runId,
        patch: { files: taken.files ?? null, stdout: taken.stdout ?? null, fingerprint },
      });
      return "succeeded";
    }
  }

  for (let attempt = 1; ; attempt++) {
    if (control.submitSignal.aborted) return notStarted(context, address);
    const outcome = await context.processes.add(() => runOnce(context, step, invocation, attempt));
    if (outcome.kind === "done") return finish(context, step, invocation, fingerprint, outcome.result);
    if (outcome.kind === "not_started") return notStarted(context, address);
    if (outcome.kind === "killed") {
      if (control.reason === "interrupted" && context.handsBackLocalWork) {
        await tracker.transition(address, StepState.waiting, {
          error: "handed back: the worker running it stopped; another worker runs it again",
        });
        return "left";
      }
      await tracker.transition(address, StepState.cancelled, {
        error: `killed: the run was ${control.reason ?? "stopped"}`,
      });
      return control.reason === "interrupted" ? "left" : "failed";
    }
    if (outcome.kind === "final" || attempt >= step.retry.attempts) {
      const tries =
        outcome.kind === "retryable" && step.retry.attempts > 1
          ? ` (attempt ${attempt} of ${step.retry.attempts})`
          : "";
      await tracker.transition(address, outcome.state, { error: `${outcome.error}${tries}` });
      return "failed";
    }
    await tracker.transition(address, StepState.waiting, { error: outcome.error });
    try {
      await deps.clock.sleep(
        backoff(attempt, { baseMs: step.retry.backoffMs, maxMs: step.retry.maxBackoffMs }, deps.random),
        control.submitSignal,
      );
    } catch {
      return notStarted(context, address);
    }
  }
}

type RunOutcome =
  | { kind: "done"; result: ProcessOutcome }
  | { kind: "not_started" }
  | { kind: "killed" }
  | { kind: "retryable"; state: "failed" | "timed_out"; error: string }
  | { kind: "final"; state: "failed"; error: string };

async function runOnce(
  context: ExecutionContext,
  step: PlannedStep,
  invocation: Invocation,
  attempt: number,
): Promise<RunOutcome> {
  const { deps, control, tracker } = context;
  if (control.submitSignal.aborted) return { kind: "not_started" };
  // Killed when the run is interrupted or cancelled; an auth or balance stop lets local work finish.
  const kill = new AbortController();
  const onStop = () => {
    if (control.reason === "interrupted" || control.reason === "cancelled") kill.abort();
  };
  control.submitSignal.addEventListener("abort", onStop, { once: true });
  await tracker.transition(step.address, StepState.running, {
    attempt,
    patch: { attempt, startedAt: deps.clock.now() },
  });
  try {
    const result = await deps.runProcess({
      argv: invocation.argv,
      cwd: invocation.cwd,
      env: invocation.env,
      timeoutMs: step.timeoutMs,
      signal: kill.signal,
    });
    if (result.cancelled) return { kind: "killed" };
    if (result.timedOut)
      return {
        kind: "retryable",
        state: "timed_out",
        error: `timed out after ${formatDuration(step.timeoutMs)}`,
      };
    if (result.failure !== undefined && result.exitCode === undefined)
      return { kind: "final", state: "failed", error: result.failure };
    if (result.exitCode !== 0) {
      const said = lastLines(result.stderr, 3);
      return {
        kind: "retryable",
        state: "failed",
        error: `${invocation.argv[0] ?? "the program"} exited with code ${result.exitCode ?? "?"}${said ? `: ${said}` : ""}`,
      };
    }
    return { kind: "done", result };
  } finally {
    control.submitSignal.removeEventListener("abort", onStop);
  }
}

async function finish(
  context: ExecutionContext,
  step: PlannedStep,
  invocation: Invocation,
  fingerprint: string,
  result: ProcessOutcome,
): Promise<StepEnding> {
  const { deps, tracker } = context;
  const rows: NewOutput[] = [];
  for (const [name, file] of Object.entries(invocation.outputs)) {
    if ((await regularFileSize(file)) === undefined) {
      await tracker.transition(step.address, StepState.failed, {
        error: `output \`${name}\` was not produced: no file at ${file}`,
      });
      return "failed";
    }
    const facts = await hashFile(file);
    rows.push({
      runId: context.runId,
      address: step.address,
      name,
      url: pathToFileURL(file).href,
      path: file,
      bytes: facts.bytes,
      sha256: facts.sha256,
      createdAt: deps.clock.now(),
    });
  }
  const stdout =
    result.stdout.length > MAX_STDOUT_CHARS ? result.stdout.slice(0, MAX_STDOUT_CHARS) : result.stdout;
  const files = { ...invocation.outputs };
  context.results.record(step.address, resultView({ files, stdout }));
  await tracker.transition(step.address, StepState.succeeded, {
    patch: { files, stdout, fingerprint },
    writeWith: (patch) => deps.store.steps.update(context.runId, step.address, patch, { outputs: rows }),
  });
  return "succeeded";
}

async function notStarted(context: ExecutionContext, address: string): Promise<StepEnding> {
  if (context.control.reason === "interrupted") return "left";
  await context.tracker.transition(address, StepState.cancelled, {
    error: context.control.notSubmittedMessage(),
  });
  return "failed";
}
