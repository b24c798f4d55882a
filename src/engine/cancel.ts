/**
 * The `cancel` use case (SPEC §2): a live apply of the run is asked to stop (it stops
 * submitting and cancels its queued requests itself); with no live process, the run's
 * queued requests are cancelled here, directly at the API. Running requests cannot be
 * cancelled (the API says so): they stay recorded, and the next apply collects them.
 *
 * A run on the embedded emulator (`apply --emulator`) is the exception: its requests lived
 * in the process that ran it, and ended with it. With that process gone there is nothing
 * to cancel at any API: its open steps are marked cancelled here, and no token is needed.
 */
import os from "node:os";
import { decideLock, isProcessAlive } from "../store/lock.js";
import type { StateStore } from "../store/port.js";
import { OPEN_ATTEMPT_STATES, type AttemptRecord, type RunRecord } from "../store/types.js";
import { describeOrigin, EMBEDDED_EMULATOR_ORIGIN } from "../api/origin.js";
import { UsageError } from "../errors.js";
import { findRun } from "./find-run.js";
import { closeStore, openStoreAt } from "./store-session.js";
import type { CancelPorts, Placed } from "./use-case-ports.js";
import { DEFAULT_LOCK_TIMING } from "./workflow-lock.js";

export interface CancelRequest {
  run?: string | undefined;
  cwd?: string | undefined;
  statePath?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** How long to wait for a live apply to stop (default 30 s). */
  waitMs?: number | undefined;
  /** `--emulator`: the run was on the embedded emulator (also known from the run's own record). */
  emulator?: boolean | undefined;
}

export interface CancelOutcome {
  runId: string;
  /** A live apply was running the run and was asked to stop. */
  live: boolean;
  /** The run had finished before: nothing to do. */
  alreadyFinished: boolean;
  /** How the run ended, when it did (a live apply that stopped in time). */
  finalStatus: RunRecord["status"] | undefined;
  /** Steps whose queued request was cancelled here. */
  cancelled: string[];
  /** Steps whose request was already running: left recorded for the next apply. */
  running: string[];
  /** Steps whose request could not be cancelled for another reason, with it. */
  errors: { address: string; error: string }[];
  /** The run was on the embedded emulator, gone with its process: its open steps were only marked. */
  emulatorGone: boolean;
}

/** Whether the run was on the in-process emulator of `apply --emulator` (recorded with its options). */
function ranOnEmbeddedEmulator(run: RunRecord): boolean {
  const options = run.options as { emulator?: unknown } | undefined;
  return run.apiOrigin === EMBEDDED_EMULATOR_ORIGIN || options?.emulator === true;
}

/** Whether a live process holds the run's workflow lock for this very run. */
async function isLive(store: StateStore, run: RunRecord, now: number): Promise<boolean> {
  const holder = await store.locks.get(run.workflowName);
  if (!holder || holder.runId !== run.id) return false;
  const decision = decideLock(
    holder,
    { runId: `${run.id}:cancel`, pid: process.pid, hostname: os.hostname() },
    {
      now,
      staleAfterMs: DEFAULT_LOCK_TIMING.staleAfterMs,
      isProcessAlive,
    },
  );
  return decision.action === "refuse";
}

function checkRunMadeHere(run: RunRecord, apiOrigin: string): void {
  if (run.apiOrigin === apiOrigin) return;
  throw new UsageError(
    `run ${run.id} was made at ${describeOrigin(run.apiOrigin)}; its requests can be cancelled only there, not at ${describeOrigin(apiOrigin)}`,
    {
      hint:
        run.apiOrigin === undefined || run.apiOrigin === "emulator"
          ? "nothing was sent to this API for it"
          : `set RUNCOMFY_BASE_URL=${run.apiOrigin} and cancel it again`,
    },
  );
}

export async function cancelRun(request: Placed<CancelRequest>, ports: CancelPorts): Promise<CancelOutcome> {
  const { clock } = ports;
  const { store, path: statePath } = await openStoreAt(ports.openStore, request.statePath, request);
  let failed = false;
  try {
    const run = await findRun(store, request.run, statePath);
    const outcome: CancelOutcome = {
      runId: run.id,
      live: false,
      alreadyFinished: run.finishedAt !== undefined,
      finalStatus: run.finishedAt !== undefined ? run.status : undefined,
      cancelled: [],
      running: [],
      errors: [],
      emulatorGone: false,
    };
    if (outcome.alreadyFinished) return outcome;
    const embedded = ranOnEmbeddedEmulator(run);
    if (request.emulator && !embedded) {
      throw new UsageError(
        `run ${run.id} was made at ${describeOrigin(run.apiOrigin)}, not the embedded emulator`,
        {
          hint: `cancel it there: runflow cancel ${run.id} (without --emulator, with RUNCOMFY_API_TOKEN set)`,
        },
      );
    }

    await store.runs.requestCancel(run.id, clock.now());
    if (await isLive(store, run, clock.now())) {
      outcome.live = true;
      const deadline = clock.now() + (request.waitMs ?? 30_000);
      while (clock.now() < deadline) {
        const now = await store.runs.get(run.id);
        if (now?.finishedAt !== undefined) {
          outcome.finalStatus = now.status;
          break;
        }
        await clock.sleep(200);
      }
      return outcome;
    }

    const markCancelled = async (attempt: AttemptRecord, stepError: string) => {
      const at = clock.now();
      await store.steps.update(
        run.id,
        attempt.address,
        { updatedAt: at, state: "cancelled", error: stepError, queuePosition: null, finishedAt: at },
        {
          attempt: {
            key: attempt,
            patch: { state: "cancelled", error: "cancelled by `runflow cancel`", finishedAt: at },
          },
        },
      );
      outcome.cancelled.push(attempt.address);
    };
    // A request id means something only at the API that gave it.
    if (!embedded && !ports.callersApi) checkRunMadeHere(run, ports.api.origin());
    const api = embedded ? undefined : ports.api.client({ poll: undefined });
    outcome.emulatorGone = embedded;
    for (const attempt of await store.attempts.list(run.id)) {
      if (attempt.requestId === undefined || !OPEN_ATTEMPT_STATES.includes(attempt.state)) continue;
      if (!api) {
        await markCancelled(
          attempt,
          "cancelled (`runflow cancel`): the embedded emulator that ran it ended with its apply",
        );
        continue;
      }
      try {
        const answer = await api.cancel(attempt.requestId);
        if (answer.outcome !== "cancelled") {
          outcome.running.push(attempt.address);
          continue;
        }
        await markCancelled(attempt, "cancelled while queued (`runflow cancel`)");
      } catch (error) {
        outcome.errors.push({
          address: attempt.address,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    if (run.status === "running") {
      const counts = await store.steps.countByState(run.id);
      await store.runs.finish(run.id, { status: "cancelled", exitCode: 1, finishedAt: clock.now(), counts });
      outcome.finalStatus = "cancelled";
    }
    return outcome;
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await closeStore(store, failed);
  }
}
