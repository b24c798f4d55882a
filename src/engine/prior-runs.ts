/**
 * What earlier runs left, as a run against one API origin sees it (api/origin.ts): the
 * successes it may take over, the requests it re-attaches to, and the requests made at
 * another API that still hold a step. The planner reads it through its PriorState port and
 * the executor asks the very same questions at run time, so `plan` says what `apply` does.
 * Both ask the store's synchronous lookup of earlier runs (`store.history.priorRuns`): the
 * planner is synchronous and pure.
 */
import { describeOrigin, EMBEDDED_EMULATOR_ORIGIN, isEmulatorOrigin } from "../api/origin.js";
import type { PriorState, UnfinishedRequest } from "../plan/types.js";
import type { PriorRunsLookup } from "../store/port.js";
import type { InFlightAttempt } from "../store/types.js";

/**
 * Requests that may still exist: not those of the embedded emulator, which ended with the
 * apply that started it (a new one knows none of their ids).
 */
function mayStillExist(attempt: InFlightAttempt): boolean {
  return attempt.apiOrigin !== EMBEDDED_EMULATOR_ORIGIN;
}

/**
 * The request an earlier run made for the step at `address` that may still exist and bears
 * on a run at `apiOrigin` (PriorState.unfinished says what each kind means):
 * - one of this origin speaks first: re-attach to it, or hold the step when its answer was lost;
 * - one of another origin holds the step only when both could bill: a RunComfy request is
 *   not sent again to RunComfy through another base URL, but the emulator bills nothing.
 */
export function unfinishedRequest(
  store: Pick<PriorRunsLookup, "inFlightAt">,
  workflowName: string,
  fingerprint: string,
  address: string,
  apiOrigin: string,
): UnfinishedRequest | undefined {
  const attempts = store.inFlightAt(workflowName, fingerprint, address).filter(mayStillExist);
  const here = attempts.find((attempt) => attempt.apiOrigin === apiOrigin);
  if (here) {
    return here.disposition === "reattach" && here.requestId !== undefined
      ? {
          kind: "reattach",
          runId: here.runId,
          requestId: here.requestId,
          submittedAt: here.submittedAt ?? here.startedAt,
        }
      : { kind: "maybe_billed", runId: here.runId, attempt: here.attempt };
  }
  if (isEmulatorOrigin(apiOrigin)) return undefined;
  const elsewhere = attempts.find((attempt) => !isEmulatorOrigin(attempt.apiOrigin));
  return elsewhere
    ? {
        kind: "elsewhere",
        runId: elsewhere.runId,
        requestId: elsewhere.requestId,
        apiOrigin: elsewhere.apiOrigin,
      }
    : undefined;
}

/** Why a step is held `unknown` rather than sent (the step's error, and `plan`'s line). */
export function heldBecause(unfinished: Exclude<UnfinishedRequest, { kind: "reattach" }>): string {
  if (unfinished.kind === "maybe_billed") {
    return (
      `an earlier submission (run ${unfinished.runId}, attempt ${unfinished.attempt}) may have been created and billed, ` +
      "but its answer never arrived; it is not sent again"
    );
  }
  const request = unfinished.requestId === undefined ? "a request" : `request ${unfinished.requestId}`;
  return (
    `${request} of run ${unfinished.runId}, made at ${describeOrigin(unfinished.apiOrigin)}, may still be running there; ` +
    "it is not sent here, which could pay twice: apply against that API to collect it " +
    "(`runflow retry --resubmit-unknown` sends it here)"
  );
}

/**
 * The planner's view of earlier runs from `apiOrigin`: their successes (none with `fresh`)
 * and their unfinished requests (re-attached even with `fresh`: never paid twice).
 * `unfinished: false` leaves the requests out: `apply` asks about them once per step, when
 * the step starts (model-step.ts), rather than twice (about 25 µs a step).
 */
export function priorStateAt(
  store: Pick<PriorRunsLookup, "findSucceeded" | "inFlightAt">,
  apiOrigin: string,
  options: { fresh?: boolean | undefined; unfinished?: boolean | undefined } = {},
): PriorState {
  const prior: PriorState = {
    findSucceeded: (workflowName, fingerprint) =>
      options.fresh ? undefined : store.findSucceeded(workflowName, fingerprint, { apiOrigin }),
  };
  if (options.unfinished !== false) {
    prior.unfinished = (workflowName, fingerprint, address) =>
      unfinishedRequest(store, workflowName, fingerprint, address, apiOrigin);
  }
  return prior;
}

/**
 * One line per earlier run with requests still unfinished at another API than `apiOrigin`:
 * this run neither polls them (that API would not know their ids) nor forgets them.
 */
export function unfinishedElsewhere(
  store: Pick<PriorRunsLookup, "listInFlight">,
  workflowName: string,
  apiOrigin: string,
): string[] {
  const groups = new Map<
    string,
    { runId: string; apiOrigin: string | undefined; attempts: InFlightAttempt[] }
  >();
  for (const attempt of store.listInFlight(workflowName)) {
    if (attempt.apiOrigin === apiOrigin || !mayStillExist(attempt)) continue;
    const key = `${attempt.runId}\u0000${attempt.apiOrigin ?? ""}`;
    const group = groups.get(key) ?? { runId: attempt.runId, apiOrigin: attempt.apiOrigin, attempts: [] };
    group.attempts.push(attempt);
    groups.set(key, group);
  }
  const held = !isEmulatorOrigin(apiOrigin);
  return [...groups.values()].map(({ runId, apiOrigin: origin, attempts }) => {
    const count = attempts.length === 1 ? "1 request" : `${attempts.length} requests`;
    const consequence =
      held && !isEmulatorOrigin(origin)
        ? "their steps are held as unknown here rather than paid for twice"
        : "this run sends their steps here";
    return `run ${runId} has ${count} made at ${describeOrigin(origin)} still unfinished; this run does not collect them (${consequence}); apply against that API to collect them`;
  });
}
