/**
 * One model step, from ready to done (SPEC §4–§5): the request body (resolved and validated
 * now when it reads earlier steps) → reuse of an earlier success → re-attachment to a request
 * an earlier run left running → submissions, each an attempt → download of every output.
 * What the step does about anything that goes wrong is the step policy's (step-policy.ts):
 * this module asks it at each decision point and acts on the answer.
 *
 * The invariant that protects the user's money: a request id is committed to the database
 * before anything else happens with it, and a submission whose answer was lost is never
 * sent again unless the user says so.
 */
import path from "node:path";
import {
  isTerminalStatus,
  serverDurationMs,
  type RequestResult,
  type RequestStatus,
} from "../api/answers.js";
import { formatInputIssue } from "../models/format-issue.js";
import { checkMediaInput } from "../api/media-probe.js";
import { validateModelInput } from "../models/validate-input.js";
import { outputProblem } from "../models/validate-output.js";
import { fingerprintModelStep } from "../plan/fingerprint.js";
import type { PlannedStep, ReusableStep } from "../plan/types.js";
import type { AttemptKey, NewAttempt, NewOutput, StepPatch } from "../store/types.js";
import { resolveValue, TemplateResolutionError } from "../template/resolve.js";
import { DiskError } from "../util/disk-errors.js";
import type { ExecutionContext, StepEnding } from "./context.js";
import { filesByName, outputFilesOf, outputPath } from "./output-files.js";
import { CAPTURE_FOLDER } from "./input-captures.js";
import { heldBecause, unfinishedRequest } from "./prior-runs.js";
import { findReusable, referencedResult, takeOverModelStep } from "./reuse.js";
import { isStopSignal } from "./run-control.js";
import { runFolder } from "./run-folders.js";
import { removeStaleParts } from "../util/part-files.js";
import { StepState } from "./states.js";
import {
  AttemptTimeout,
  CancelledWhileQueued,
  resubmitsUnknown,
  STEP_POLICY,
  type StepDecision,
  type StepEvent,
} from "./step-policy.js";
import { resultView } from "./step-results.js";

/**
 * The error of a step whose submission may have been created: what happened, and once what
 * follows. The client's reason may already end in its own "may have been created" clause;
 * it is dropped here so the sentence says it once. How to send it anyway is the summary's
 * to say (`runflow retry RUN --resubmit-unknown`), with the run's id.
 */
export function unknownSubmissionError(reason: string, resubmitting: boolean): string {
  const what = reason.replace(/;\s*(?:the submission|it) may have been created.*$/, "");
  return `${what}; it may have been created (and billed)${resubmitting ? "" : ", so it is not sent again"}`;
}

/** How one attempt ended. */
type AttemptOutcome =
  | {
      kind: "succeeded";
      result: RequestResult;
      key: AttemptKey;
      requestId: string;
      /** The run that submitted the request, when this one re-attached to it. */
      reattachedFrom?: string;
    }
  /** Another attempt after `waitMs` (the step policy's answer). */
  | { kind: "retry"; waitMs: number; error: string }
  /** The step ends here, in `state`; `retriesEnded`: its attempts ran out (or the run is stopping). */
  | {
      kind: "final";
      state: "failed" | "unknown" | "cancelled" | "timed_out";
      error: string;
      keepDependentsWaiting?: boolean;
      retriesEnded?: boolean;
    }
  /** Stopped before it was submitted. */
  | { kind: "not_submitted" }
  /** Not submitted: its estimate does not fit the budget (SPEC §9). */
  | { kind: "held" }
  /** Stopped while remote: the request stays recorded for the next apply to re-attach. */
  | { kind: "left" };

interface Reattachment {
  requestId: string;
  fromRunId: string;
  submittedAt: number;
}

/** Where a submitted request was last seen. */
type RemoteState = "submitted" | "in_queue" | "in_progress";

/** A re-attached request gets at least this long before its timeout counts, so a finished one is collected, not cancelled. */
const MIN_REATTACH_WINDOW_MS = 10_000;
const CANCEL_TIMEOUT_MS = 10_000;
/** Ends an attempt's timeout timer once its watch is over; nobody reads it. */
const WATCH_ENDED = new Error("the watch of this attempt ended");

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Asks the step policy (step-policy.ts) what to do about `event`; the engine only acts on
 * its answer. `attempt` is the attempt that met it (0 before the first).
 */
function decide(
  context: ExecutionContext,
  step: PlannedStep,
  attempt: number,
  event: StepEvent,
  pollFailures = 0,
): StepDecision {
  const { deps, options, control } = context;
  return (deps.stepPolicy ?? STEP_POLICY).decide(event, {
    attempt,
    retry: step.retry,
    resubmitUnknown: resubmitsUnknown(options.resubmitUnknown, step.retry),
    stopping: control.stopped,
    pollFailures,
    random: deps.random,
  });
}

/** Acts on a decision that ends the attempt: what it means for the step (and the run). */
function outcomeOf(context: ExecutionContext, decision: StepDecision, error: string): AttemptOutcome {
  switch (decision.kind) {
    case "retry":
      return { kind: "retry", waitMs: decision.waitMs, error };
    case "final":
      return { kind: "final", state: decision.state, error, retriesEnded: decision.retriesEnded };
    case "unknown":
      return { kind: "final", state: "unknown", error };
    case "stop_run":
      context.control.stop(decision.stop);
      return decision.step === "left" ? { kind: "left" } : { kind: "final", state: "failed", error };
    case "stopped":
      return { kind: "left" };
  }
}

/**
 * `leftTheApi` hears when the step needs no request slot any more (its request succeeded and
 * only the downloads are left), so the executor can start the next ready step at once.
 */
export async function executeModelStep(
  context: ExecutionContext,
  step: PlannedStep,
  leftTheApi: () => void = () => {},
): Promise<StepEnding> {
  const { tracker, deps, control } = context;
  const address = step.address;
  await tracker.transition(address, StepState.waiting);

  // A step planned as reused takes over the step it names first: a retry's plan holds it
  // without the steps its input read (they succeeded and are not run again), so that input
  // could not be resolved here.
  const referenced = step.reuse && (await referencedResult(context, step.reuse));
  if (referenced && step.reuse) {
    const earlier = step.body ? undefined : await deps.store.steps.get(step.reuse.runId, step.reuse.address);
    if (earlier) {
      // Its resolved input, as the step it takes over had it (the plan holds templates).
      await deps.store.steps.update(context.runId, address, {
        updatedAt: deps.clock.now(),
        fingerprint: earlier.fingerprint ?? null,
        input: earlier.input,
      });
    }
    const ending = await takeOver(context, step, referenced, step.fingerprint ?? earlier?.fingerprint);
    if (ending) return ending;
  }

  const prepared =
    step.body && step.fingerprint !== undefined
      ? preparedFromPlan(step)
      : await prepareDeferredBody(context, step);
  if ("error" in prepared) {
    // A stop ends the media probes' waits (a media host's Retry-After): not the step's fault.
    if (control.submitSignal.aborted) return stoppedBeforeSubmission(context, address);
    await tracker.transition(address, StepState.failed, { error: prepared.error });
    return "failed";
  }
  const { body, fingerprint } = prepared;
  if (!step.body) {
    await deps.store.steps.update(context.runId, address, {
      updatedAt: deps.clock.now(),
      fingerprint,
      input: body,
    });
  }

  const found = findReusable(context, fingerprint);
  if (found) {
    const ending = await takeOver(context, step, found, fingerprint);
    if (ending) return ending;
  }

  // The same question `plan` asked (prior-runs.ts), asked again now: an earlier request
  // of this step at this API is collected; one that may be billed is never sent again
  // unless the user says so.
  let reattach: Reattachment | undefined = context.fence?.reattach;
  const unfinished = reattach
    ? undefined
    : unfinishedRequest(context.prior, context.workflowName, fingerprint, address, context.apiOrigin);
  if (unfinished?.kind === "reattach") {
    reattach = {
      requestId: unfinished.requestId,
      fromRunId: unfinished.runId,
      submittedAt: unfinished.submittedAt,
    };
  } else if (unfinished && decide(context, step, 0, { at: "earlier-submission" }).kind !== "retry") {
    await tracker.transition(address, StepState.unknown, { error: heldBecause(unfinished) });
    return "failed";
  }

  // A step redelivered to a worker continues after the attempts its run made already.
  const first = 1 + (context.fence?.attemptsBefore ?? 0);
  for (let attempt = first; ; attempt++) {
    const outcome = await context.scheduler.run(
      step.model,
      (releaseSlot) =>
        remoteAttempt(
          context,
          step,
          body,
          fingerprint,
          attempt,
          attempt === first ? reattach : undefined,
          releaseSlot,
        ),
      (reason) => tracker.wait(address, reason),
    );
    switch (outcome.kind) {
      case "succeeded":
        leftTheApi();
        return collect(context, step, fingerprint, outcome);
      case "left":
        return "left";
      case "not_submitted":
        return stoppedBeforeSubmission(context, address);
      case "held":
        await tracker.transition(address, StepState.held, { error: context.costs.heldMessage() });
        return "failed";
      case "final": {
        if (outcome.state === "cancelled" && outcome.keepDependentsWaiting) {
          await tracker.transition(address, StepState.cancelled, { error: outcome.error });
          return "left";
        }
        const tries =
          outcome.retriesEnded && step.retry.attempts > 1
            ? ` (attempt ${attempt} of ${step.retry.attempts})`
            : "";
        await tracker.transition(address, outcome.state, { error: `${outcome.error}${tries}` });
        return "failed";
      }
      case "retry": {
        await tracker.transition(address, StepState.waiting, { error: outcome.error });
        tracker.wait(address, {
          kind: "backoff",
          until: deps.clock.now() + outcome.waitMs,
          why: outcome.error,
          before: "attempt",
        });
        try {
          await deps.clock.sleep(outcome.waitMs, control.submitSignal);
        } catch {
          return stoppedBeforeSubmission(context, address);
        }
      }
    }
  }
}

/** Takes over an earlier success; undefined when its files are gone (the step then runs). */
async function takeOver(
  context: ExecutionContext,
  step: PlannedStep,
  found: ReusableStep,
  fingerprint: string | undefined,
): Promise<StepEnding | undefined> {
  const { control, tracker } = context;
  const taken = await takeOverModelStep(context, step, found, control.watchSignal).catch((error: unknown) => {
    if (isStopSignal(error) || control.watchSignal.aborted) return "stopped" as const;
    if (error instanceof DiskError) return error;
    throw error;
  });
  if (taken === "stopped") return "left";
  if (taken instanceof DiskError) {
    // Submitting again would pay for a result that could not be saved either.
    await tracker.transition(step.address, StepState.failed, {
      error: `${taken.message}; nothing was submitted: \`runflow apply\` again takes over the result of run ${found.runId} once the disk can hold it`,
    });
    return "failed";
  }
  if (!taken) return undefined;
  context.results.record(step.address, resultView(taken));
  await tracker.transition(step.address, StepState.reused, {
    reusedFrom: found.runId,
    requestId: taken.requestId,
    patch: { output: taken.output ?? null, files: taken.files ?? null, fingerprint },
  });
  return "succeeded";
}

function preparedFromPlan(
  step: PlannedStep,
): { body: Record<string, unknown>; fingerprint: string } | { error: string } {
  if (step.problems && step.problems.length > 0) return { error: step.problems.join("; ") };
  return { body: step.body!, fingerprint: step.fingerprint! };
}

/**
 * The body of a step that reads earlier steps: resolved with their results, then checked
 * like any input — the schema, and the media rules on the media behind the URLs known only
 * now (Aleph's 16 MB on a video Hailuo made). A failed check submits nothing.
 */
async function prepareDeferredBody(
  context: ExecutionContext,
  step: PlannedStep,
): Promise<{ body: Record<string, unknown>; fingerprint: string } | { error: string }> {
  const entry = step.model === undefined ? undefined : context.deps.registry.get(step.model);
  if (!entry || step.model === undefined) return { error: `no schema for model ${step.model ?? "(none)"}` };
  let input: Record<string, unknown>;
  try {
    input = resolveValue(step.input ?? {}, context.results.contextFor(step)) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TemplateResolutionError) return { error: `input: ${error.message}` };
    throw error;
  }
  const { value, issues } = validateModelInput(entry, input);
  if (issues.length > 0) return { error: issues.map(formatInputIssue).join("; ") };
  const knownBefore = new Set(Object.keys(value).filter((field) => !step.deferredFields.includes(field)));
  const mediaIssues = await checkMediaInput(entry, value, {
    deferred: knownBefore,
    cache: context.mediaCache,
    signal: context.control.submitSignal,
    ...(context.deps.probe ? { transport: context.deps.probe } : {}),
  });
  if (mediaIssues.length > 0) return { error: mediaIssues.map(formatInputIssue).join("; ") };
  return { body: value, fingerprint: fingerprintModelStep(step.model, value) };
}

/** A step that never got submitted because the run stopped: cancelled, or left waiting for the next apply. */
async function stoppedBeforeSubmission(context: ExecutionContext, address: string): Promise<StepEnding> {
  if (context.control.reason === "interrupted") return "left";
  await context.tracker.transition(address, StepState.cancelled, {
    error: context.control.notSubmittedMessage(),
  });
  return "failed";
}

/**
 * One attempt, holding a request slot: submit (or re-attach), record the id, and watch the
 * request until it ends, times out or the run stops. `releaseSlot` gives the slot back as
 * soon as the API says the request finished: the result's fetch and judgement, and the
 * downloads after, are no reason to keep the next submission waiting.
 */
async function remoteAttempt(
  context: ExecutionContext,
  step: PlannedStep,
  body: Record<string, unknown>,
  fingerprint: string,
  attempt: number,
  reattach: Reattachment | undefined,
  releaseSlot: () => void,
): Promise<AttemptOutcome> {
  const { deps, control, tracker } = context;
  const model = step.model!;
  if (control.submitSignal.aborted) return reattach ? { kind: "left" } : { kind: "not_submitted" };
  let claimLost = false;
  const key: AttemptKey = { runId: context.runId, address: step.address, attempt };
  const startedAt = deps.clock.now();
  let requestId: string;
  let submittedAt: number;

  if (reattach) {
    requestId = reattach.requestId;
    submittedAt = reattach.submittedAt;
    const fromRunId = reattach.fromRunId;
    await tracker.transition(step.address, StepState.in_queue, {
      attempt,
      requestId,
      writeWith: (patch) =>
        startOrClaim(
          context,
          {
            ...key,
            workflowName: context.workflowName,
            fingerprint,
            startedAt,
            reattach: { requestId, fromRunId },
          },
          patch,
        ).then((won) => void (claimLost = !won)),
    });
    if (claimLost) return { kind: "left" };
    context.notice(
      "info",
      `${step.address}: re-attached to request ${requestId} (submitted by run ${fromRunId})`,
    );
    // Its remote input stills, for the report: in their own lane, never awaited here.
    context.captures.capture(step, body);
  } else {
    // The one place that decides to spend: the budget check and the reservation are one
    // step (in memory, or one transaction of the shared state), so concurrent steps cannot
    // both take the last of the budget.
    if (!(await context.costs.reserve(key, model))) return { kind: "held" };
    await tracker.transition(step.address, StepState.submitting, {
      attempt,
      writeWith: (patch) =>
        startOrClaim(
          context,
          { ...key, workflowName: context.workflowName, fingerprint, startedAt },
          patch,
        ).then((won) => void (claimLost = !won)),
    });
    // Another process's claim of this attempt committed first: it submits, this one drops the step.
    if (claimLost) {
      await context.costs.forgo(key);
      return { kind: "left" };
    }
    // Resolved: the attempt is durable before the POST that may create (and bill) it.
    const submitted = await submit(context, step, key, body);
    if (submitted.kind !== "submitted") return submitted.outcome;
    requestId = submitted.requestId;
    submittedAt = deps.clock.now();
    // Durable before anything else: from here a crash means re-attachment, never a second
    // submission. Every new request starts in the API's queue; saying so now, in the same
    // commit as its id (the first poll may be a typical duration away), keeps views and an
    // interrupted run's counts from showing a request that exists as still `submitting`.
    const id = requestId;
    const fence = context.fence;
    let recorded = true;
    await tracker.transition(step.address, StepState.in_queue, {
      requestId,
      writeWith: (patch) =>
        fence
          ? deps.store.attempts
              .recordClaimedRequestId(key, fence.worker, id, submittedAt, patch)
              .then((won) => void (recorded = won))
          : deps.store.attempts.recordRequestId(key, id, submittedAt, patch),
    });
    if (!recorded) {
      // Judged abandoned (its claimant taken for dead) before the id was written: the
      // attempt is `unknown`, and this process does not poll what it no longer holds.
      context.notice(
        "warn",
        `${step.address}: request ${id} was created after its attempt was judged abandoned; it stays unknown (maybe billed)`,
      );
      return { kind: "left" };
    }
  }
  const outcome = await watch(
    context,
    step,
    key,
    requestId,
    submittedAt,
    reattach !== undefined,
    releaseSlot,
  );
  if (outcome.kind === "succeeded" && reattach) outcome.reattachedFrom = reattach.fromRunId;
  return outcome;
}

/**
 * Starts an attempt: in one process, simply; in a cluster (`context.fence`), as a claim that
 * only the first process to commit it wins (SPEC §10). False: another process holds it.
 */
function startOrClaim(context: ExecutionContext, attempt: NewAttempt, patch: StepPatch): Promise<boolean> {
  const { store } = context.deps;
  return context.fence
    ? store.attempts.claim(attempt, patch, context.fence.worker)
    : store.attempts.start(attempt, patch).then(() => true);
}

type Submitted = { kind: "submitted"; requestId: string } | { kind: "outcome"; outcome: AttemptOutcome };

async function submit(
  context: ExecutionContext,
  step: PlannedStep,
  key: AttemptKey,
  body: Record<string, unknown>,
): Promise<Submitted> {
  const { deps, control } = context;
  const model = step.model!;
  const endAttempt = (state: "failed" | "unknown", error: string) =>
    deps.store.attempts.update(key, {
      state,
      error,
      finishedAt: state === "failed" ? deps.clock.now() : null,
    });
  let answer;
  const startedAt = deps.clock.now();
  try {
    // The run's stop ends a wait between tries (a 429's Retry-After) at once, but never cuts
    // a POST on the wire: cut off mid-flight it may still create the request, so its answer
    // is awaited and its id recorded. A second signal ends the process anyway.
    const answering = deps.api.submit(model, body, { stopSignal: control.submitSignal });
    // Its remote input stills, for the report: in their own lane, never awaited here, and
    // started once its POST is on its way rather than in front of it (each URL once a run).
    context.captures.capture(step, body);
    answer = await answering;
    context.apiHealth.answered();
  } catch (error) {
    context.apiHealth.failed(error, startedAt);
    // A throw means nothing was created (the client's contract): nothing to pay.
    await context.costs.release(key);
    const decision = decide(context, step, key.attempt, { at: "submit", error });
    if (decision.kind === "stopped") {
      const message = control.notSubmittedMessage();
      await context.tracker.transition(step.address, StepState.waiting, {
        writeWith: (patch) =>
          deps.store.steps.update(context.runId, step.address, patch, {
            attempt: { key, patch: { state: "cancelled", error: message, finishedAt: deps.clock.now() } },
          }),
      });
      return { kind: "outcome", outcome: { kind: "not_submitted" } };
    }
    const message = messageOf(error);
    await endAttempt("failed", message);
    return { kind: "outcome", outcome: outcomeOf(context, decision, message) };
  }
  if (answer.kind === "unknown") {
    // It may exist and be billed: its estimate stays spent.
    await context.costs.settle(key, model, undefined);
    const decision = decide(context, step, key.attempt, { at: "submit-answer-lost" });
    const error = unknownSubmissionError(answer.reason, decision.kind !== "unknown");
    await endAttempt("unknown", error);
    return { kind: "outcome", outcome: outcomeOf(context, decision, error) };
  }
  // The caller commits the id before anything else (remoteAttempt).
  return { kind: "submitted", requestId: answer.requestId };
}

/** Polls the request to its end (or timeout, or the run's stop) and judges the result. */
async function watch(
  context: ExecutionContext,
  step: PlannedStep,
  key: AttemptKey,
  requestId: string,
  submittedAt: number,
  reattached: boolean,
  releaseSlot: () => void,
): Promise<AttemptOutcome> {
  const { deps, control, tracker } = context;
  const model = step.model!;
  const address = step.address;
  // `submitted`: no status seen yet, so it may still be queued.
  let remote: RemoteState = reattached ? "in_queue" : "submitted";
  let position: number | undefined;

  const attemptAbort = new AbortController();
  // When to poll: the model's duration as this run learns it, even while this request waits.
  const guide = context.typical.guide(model);
  const signal = AbortSignal.any([control.watchSignal, attemptAbort.signal]);
  const elapsed = deps.clock.now() - submittedAt;
  const budget = reattached
    ? Math.max(step.timeoutMs - elapsed, MIN_REATTACH_WINDOW_MS)
    : step.timeoutMs - elapsed;
  const timerAbort = new AbortController();
  deps.clock.sleep(Math.max(0, budget), timerAbort.signal).then(
    () => attemptAbort.abort(new AttemptTimeout(step.timeoutMs)),
    () => undefined,
  );
  // `runflow cancel`: a request still queued is cancelled at once; a running one is collected.
  const onStopSubmitting = () => {
    if (control.reason !== "cancelled" || remote === "in_progress") return;
    deps.api.cancel(requestId, { signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS) }).then(
      (answer) => {
        if (answer.outcome === "cancelled") attemptAbort.abort(new CancelledWhileQueued());
      },
      () => undefined,
    );
  };
  control.submitSignal.addEventListener("abort", onStopSubmitting, { once: true });
  if (control.submitSignal.aborted) onStopSubmitting();

  // A poll backoff announced to the views, ended by the next answer.
  let backingOff = false;
  // The last answer about this request: a failure surfacing later began after it.
  let answeredAt = deps.clock.now();
  // Statuses arrive in a synchronous callback: their writes are awaited when the watch ends
  // (one that failed fails the step, as any write does).
  let statusWritten: Promise<unknown> = Promise.resolve();
  const afterStatus = (written: Promise<void>) => {
    statusWritten = Promise.all([statusWritten, written]);
    statusWritten.catch(() => undefined);
  };
  const onStatus = (status: RequestStatus) => {
    context.apiHealth.answered();
    answeredAt = deps.clock.now();
    if (backingOff) {
      backingOff = false;
      tracker.wait(address, undefined);
    }
    // Finished at the API: its slot is free for the next submission (the result is read after),
    // and while the model's duration is unknown, its other requests need not wait for that
    // result to look. Only a request watched since its submission that ran to its end says
    // how long the model takes (not a re-attached one, nor one failed or cancelled early).
    if (isTerminalStatus(status.status)) {
      releaseSlot();
      if (!reattached && status.status === "completed") guide.finished(deps.clock.now() - submittedAt);
    }
    if (status.status === "in_queue" && (remote !== "in_queue" || status.queuePosition !== position)) {
      remote = "in_queue";
      position = status.queuePosition;
      const queuePosition = position;
      afterStatus(
        tracker.transition(address, StepState.in_queue, {
          requestId,
          queuePosition,
          writeWith: (patch) =>
            deps.store.steps.update(context.runId, address, patch, {
              attempt: { key, patch: { state: "in_queue", queuePosition: queuePosition ?? null } },
            }),
        }),
      );
    } else if (status.status === "in_progress" && remote !== "in_progress") {
      remote = "in_progress";
      afterStatus(
        tracker.transition(address, StepState.in_progress, {
          requestId,
          writeWith: (patch) =>
            deps.store.steps.update(context.runId, address, patch, {
              attempt: { key, patch: { state: "in_progress", queuePosition: null } },
            }),
        }),
      );
    }
  };

  try {
    let result: RequestResult | undefined;
    for (let failures = 1; result === undefined; failures++) {
      try {
        result = await deps.api.waitForResult(requestId, {
          signal,
          onStatus,
          guide,
          startedAt: submittedAt,
          // Re-attached (after a restart, or a worker's death): nobody looked for a while.
          lookFirst: reattached && failures === 1,
        });
      } catch (thrown) {
        // Aborted, the watch ended for the abort's reason (a timeout, a cancel, the run's stop).
        const error: unknown = signal.aborted ? (signal.reason as unknown) : thrown;
        const decision = decide(
          context,
          step,
          key.attempt,
          { at: "watch", error, aborted: signal.aborted },
          failures,
        );
        if (signal.aborted)
          return await stoppedWhileRemote(context, step, key, requestId, remote, decision, error);
        context.apiHealth.failed(error, answeredAt);
        if (decision.kind === "stop_run" || decision.kind === "stopped") {
          return outcomeOf(context, decision, messageOf(error));
        }
        if (decision.kind !== "retry" || decision.before !== "poll") {
          await context.costs.settle(key, model, undefined);
          await deps.store.attempts.update(key, {
            state: "failed",
            error: messageOf(error),
            finishedAt: deps.clock.now(),
          });
          return outcomeOf(context, decision, messageOf(error));
        }
        // The request still exists and may be running: keep watching it, never resubmit.
        backingOff = true;
        tracker.wait(address, {
          kind: "backoff",
          until: deps.clock.now() + decision.waitMs,
          why: messageOf(error),
          before: "poll",
        });
        try {
          await deps.clock.sleep(decision.waitMs, signal);
        } catch {
          const reason = signal.reason as unknown;
          const ended = decide(context, step, key.attempt, { at: "watch", error: reason, aborted: true });
          return await stoppedWhileRemote(context, step, key, requestId, remote, ended, reason);
        }
      }
    }
    releaseSlot();
    context.apiHealth.answered();
    context.typical.observe(model, serverDurationMs(result));
    // What the request cost, recorded on its attempt as soon as it is known (unknown: never 0).
    await context.costs.settle(key, model, result.costMicros);
    if (result.costMicros !== undefined)
      await deps.store.attempts.update(key, { costMicros: result.costMicros });
    const now = deps.clock.now();
    if (result.status === "succeeded") {
      // A success with nothing in it is the API failing the request: a failed attempt,
      // retried under retry.attempts like any remote failure (docs/decisions.md).
      const problem = outputProblem(deps.registry.get(model), result.output ?? result.strayOutput);
      if (problem === undefined) return { kind: "succeeded", result, key, requestId };
      const error = `request ${requestId} succeeded but ${problem}`;
      await deps.store.attempts.update(key, { state: "failed", error, finishedAt: now });
      return outcomeOf(
        context,
        decide(context, step, key.attempt, { at: "result", status: "empty-success" }),
        error,
      );
    }
    if (result.status === "cancelled") {
      await deps.store.attempts.update(key, {
        state: "cancelled",
        error: "cancelled at the API",
        finishedAt: now,
      });
      const decision = decide(context, step, key.attempt, { at: "result", status: "cancelled" });
      return outcomeOf(context, decision, `request ${requestId} was cancelled at the API`);
    }
    const error = result.error ?? "the request failed";
    await deps.store.attempts.update(key, { state: "failed", error, finishedAt: now });
    return outcomeOf(context, decide(context, step, key.attempt, { at: "result", status: "failed" }), error);
  } finally {
    // With a reason of our own: abort() alone builds a DOMException (and its stack) per step.
    timerAbort.abort(WATCH_ENDED);
    guide.done();
    control.submitSignal.removeEventListener("abort", onStopSubmitting);
    await statusWritten;
  }
}

/** The watch ended early (a timeout, a cancelled queued request, the run's stop); `decision` says what follows. */
async function stoppedWhileRemote(
  context: ExecutionContext,
  step: PlannedStep,
  key: AttemptKey,
  requestId: string,
  remote: RemoteState,
  decision: StepDecision,
  reason: unknown,
): Promise<AttemptOutcome> {
  const { deps } = context;
  if (decision.situation === "cancelled-while-queued") {
    await context.costs.release(key);
    await deps.store.attempts.update(key, {
      state: "cancelled",
      error: "cancelled while queued",
      finishedAt: deps.clock.now(),
    });
    return outcomeOf(context, decision, `cancelled while queued (request ${requestId})`);
  }
  if (decision.situation === "timed-out") {
    const message = messageOf(reason);
    const cancelled = await cancelRequest(context, requestId);
    if (cancelled) await context.costs.release(key);
    else await context.costs.settle(key, step.model!, undefined);
    if (!cancelled) {
      context.notice(
        "warn",
        `${step.address}: request ${requestId} timed out while running; the API cannot cancel a running request, so it may still finish and be billed`,
      );
    }
    await deps.store.attempts.update(key, {
      state: "timed_out",
      error: message,
      finishedAt: deps.clock.now(),
    });
    return outcomeOf(context, decision, `${message}${cancelled ? " (cancelled while queued)" : ""}`);
  }
  // The run stopped. A request still queued is cancelled: nobody will collect it this run.
  if (decision.kind === "stopped" && decision.cancelQueued && remote !== "in_progress") {
    if (await cancelRequest(context, requestId)) {
      await context.costs.release(key);
      await deps.store.attempts.update(key, {
        state: "cancelled",
        error: "cancelled on interrupt",
        finishedAt: deps.clock.now(),
      });
      return {
        kind: "final",
        state: "cancelled",
        error: "cancelled while queued: the run was interrupted",
        keepDependentsWaiting: true,
      };
    }
  }
  // Stopped: left recorded, the next apply re-attaches to it.
  return decision.kind === "stopped" ? { kind: "left" } : outcomeOf(context, decision, messageOf(reason));
}

/** Asks the API to cancel; true when it did (the request was still queued). */
async function cancelRequest(context: ExecutionContext, requestId: string): Promise<boolean> {
  try {
    const answer = await context.deps.api.cancel(requestId, {
      signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS),
    });
    return answer.outcome === "cancelled";
  } catch {
    return false;
  }
}

/**
 * The request succeeded: download every output into this run's folder of the instance (temporary file,
 * rename, size and sha256 recorded), then the step succeeds. The attempt stays open until
 * then, so a crash or a failed download leaves a request the next apply re-attaches to and
 * collects, instead of paying for it again.
 */
async function collect(
  context: ExecutionContext,
  step: PlannedStep,
  fingerprint: string,
  outcome: Extract<AttemptOutcome, { kind: "succeeded" }>,
): Promise<StepEnding> {
  const { deps, tracker, control } = context;
  const { result, key, requestId } = outcome;
  // A process killed mid-download left its part in its own run's folder, which no later run
  // writes into: the run that collects the request sweeps it.
  if (outcome.reattachedFrom !== undefined && context.options.download) {
    const killedRunFolder = runFolder(step.outputsDir, outcome.reattachedFrom);
    await removeStaleParts(killedRunFolder);
    // And the part of an input still it was capturing.
    await removeStaleParts(path.join(killedRunFolder, CAPTURE_FOLDER));
  }
  const files = outputFilesOf(step.stepId, result.output);
  const rows: NewOutput[] = [];
  const placed: { name: string; index: number | undefined; path: string }[] = [];
  if (context.options.download && files.length > 0) {
    await tracker.transition(step.address, StepState.downloading, { requestId });
  }
  // In the downloads' own lane (bounded), never in a request slot.
  const failed =
    context.options.download && files.length > 0
      ? await context.downloads.add(() => downloadAll())
      : await downloadAll();
  if (failed) return failed;
  async function downloadAll(): Promise<StepEnding | undefined> {
    for (const file of files) {
      const row: NewOutput = {
        runId: context.runId,
        address: step.address,
        name: file.name,
        index: file.index,
        url: file.url,
        createdAt: deps.clock.now(),
      };
      rows.push(row);
      if (!context.options.download) continue;
      try {
        const destination = outputPath(runFolder(step.outputsDir, context.runId), file.fileName);
        const downloaded = await deps.download(file.url, destination, {
          signal: control.watchSignal,
          clock: deps.clock,
          random: deps.random,
        });
        // Recorded once the file is written: a file modified after its record is one to check again.
        Object.assign(row, {
          path: destination,
          bytes: downloaded.bytes,
          sha256: downloaded.sha256,
          createdAt: deps.clock.now(),
        });
        placed.push({ name: file.name, index: file.index, path: destination });
      } catch (error) {
        const aborted = control.watchSignal.aborted;
        const decision = decide(context, step, key.attempt, { at: "download", error, aborted });
        if (decision.kind === "stopped") return "left";
        // The attempt stays open whatever the decision: the request succeeded and is collected
        // by the next apply, never paid for twice.
        const state = decision.kind === "final" ? decision.state : StepState.failed;
        await tracker.transition(step.address, state, {
          error: `${messageOf(error)} (request ${requestId} succeeded; \`runflow apply\` again collects it without paying twice)`,
        });
        return "failed";
      }
    }
    return undefined;
  }
  const output = result.output ?? {};
  const filesView = context.options.download ? filesByName(placed) : undefined;
  context.results.record(step.address, resultView({ output, files: filesView, requestId }));
  await tracker.transition(step.address, StepState.succeeded, {
    requestId,
    patch: { output, files: filesView ?? null, fingerprint },
    writeWith: (patch) =>
      deps.store.steps.update(context.runId, step.address, patch, {
        outputs: rows,
        attempt: {
          key,
          patch: {
            state: "succeeded",
            error: null,
            finishedAt: deps.clock.now(),
            serverMs: serverDurationMs(result),
          },
        },
      }),
  });
  return "succeeded";
}
