/**
 * The synchronous lookup of earlier runs (port.ts, PriorRunsLookup) for a networked store:
 * the planner asks it once per step, synchronously, so it cannot query. For each workflow
 * it is asked about, it holds what it fetched when the lookup was made (the workflow's
 * succeeded steps and in-flight attempts) and is kept current with this store's own later
 * writes, applied at the moment they are issued (as the port says writes are visible).
 *
 * To apply a later write it must know the rows the write patches: this mirror keeps the few
 * columns that matter of every step and attempt this store wrote (not the request bodies).
 * Only this process's writes are seen after the fetch: another process writing the same
 * workflow at once is what the workflow's lock excludes.
 *
 * A fetch is answered in queue order (postgres-state-store.ts): it sees exactly the writes
 * issued before it. The writes issued while it is on its way are applied to the old index
 * and remembered; the new index is the fetched rows with those applied again.
 */
import type { PriorRunsLookup } from "./port.js";
import { OPEN_ATTEMPT_STATES } from "./types.js";
import type {
  AttemptKey,
  AttemptPatch,
  AttemptState,
  InFlightAttempt,
  NewAttempt,
  ReusableStep,
  ReuseScope,
  StepFiles,
  StepPatch,
} from "./types.js";

/** Order of rows written by this process after any fetched row (fetched rows use their seq). */
const LOCAL_ORDER_BASE = 2 ** 52;

/** The columns of a step that reuse reads. */
export interface StepFacts {
  state: string;
  attempt: number;
  fingerprint: string | undefined;
  requestId: string | undefined;
  output: Record<string, unknown> | undefined;
  files: StepFiles | undefined;
  stdout: string | undefined;
  finishedAt: number | undefined;
  updatedAt: number;
}

interface MirroredStep extends StepFacts {
  runId: string;
  address: string;
  order: number;
}

interface Candidate {
  runId: string;
  address: string;
  finishedAt: number;
  order: number;
  reusable: ReusableStep;
}

interface TrackedAttempt {
  workflowName: string;
  record: InFlightAttempt;
  order: number;
  /**
   * Known only from a fetch (another process's attempt, or one of an earlier process): the
   * next fetch says whether it is still in flight, since no write of this store closes it.
   */
  fetched?: boolean;
}

interface SucceededRow {
  seq: number;
  run_id: string;
  address: string;
  fingerprint: string;
  api_origin: string;
  finished_at: number;
  request_id: string | null;
  output_json: Record<string, unknown> | null;
  files_json: StepFiles | null;
  stdout: string | null;
}

interface InFlightRow {
  seq: number;
  run_id: string;
  address: string;
  attempt: number;
  workflow_name: string;
  fingerprint: string;
  request_id: string | null;
  state: string;
  started_at: number;
  submitted_at: number | null;
  api_origin: string | null;
}

const OPEN = new Set<string>(OPEN_ATTEMPT_STATES);
const sep = "\u0000";

function reusableOf(step: {
  runId: string;
  address: string;
  finishedAt: number;
  requestId: string | undefined;
  output: Record<string, unknown> | undefined;
  files: StepFiles | undefined;
  stdout: string | undefined;
}): ReusableStep {
  const reusable: ReusableStep = { runId: step.runId, address: step.address, finishedAt: step.finishedAt };
  if (step.requestId !== undefined) reusable.requestId = step.requestId;
  if (step.output !== undefined) reusable.output = step.output;
  if (step.files !== undefined) reusable.files = step.files;
  if (step.stdout !== undefined) reusable.stdout = step.stdout;
  return reusable;
}

/** One workflow's index: reuse candidates by (fingerprint, origin); the newest attempt by (fingerprint, address, origin). */
class WorkflowIndex {
  readonly succeeded = new Map<string, Candidate[]>();
  /** Where each candidate is filed, by run and address. */
  readonly filed = new Map<string, string>();
  readonly newest = new Map<string, TrackedAttempt>();

  setCandidate(key: string, candidate: Candidate): void {
    this.removeCandidate(candidate.runId, candidate.address);
    const list = this.succeeded.get(key) ?? [];
    list.push(candidate);
    list.sort((a, b) => b.finishedAt - a.finishedAt || b.order - a.order);
    this.succeeded.set(key, list);
    this.filed.set(candidate.runId + sep + candidate.address, key);
  }

  removeCandidate(runId: string, address: string): void {
    const id = runId + sep + address;
    const key = this.filed.get(id);
    if (key === undefined) return;
    this.filed.delete(id);
    const list = this.succeeded.get(key)!.filter((c) => !(c.runId === runId && c.address === address));
    if (list.length === 0) this.succeeded.delete(key);
    else this.succeeded.set(key, list);
  }

  /** A newer attempt at the same (fingerprint, address, origin) speaks for the older ones. */
  setAttempt(tracked: TrackedAttempt): void {
    const { record } = tracked;
    const key = [record.fingerprint, record.address, record.apiOrigin ?? ""].join(sep);
    const current = this.newest.get(key);
    if (current && current.order > tracked.order) return;
    this.newest.set(key, tracked);
  }
}

/** A fetch on its way: `complete` installs what it read. */
export interface PriorRunsFetch {
  complete(succeeded: SucceededRow[], inFlight: InFlightRow[]): PriorRunsLookup;
  abandon(): void;
}

export class PriorRunsMirror {
  readonly #runs = new Map<string, { workflowName: string; apiOrigin: string | undefined }>();
  readonly #steps = new Map<string, MirroredStep>();
  readonly #attempts = new Map<string, TrackedAttempt>();
  readonly #indexes = new Map<string, WorkflowIndex>();
  /** Changes made while a workflow's fetch is on its way, to apply again to what it brings. */
  readonly #replay = new Map<string, ((index: WorkflowIndex) => void)[]>();
  readonly #lookups = new Map<string, PriorRunsLookup>();
  #localOrder = LOCAL_ORDER_BASE;

  // -- Writes, applied as they are issued.

  createRun(runId: string, workflowName: string, apiOrigin: string | undefined): void {
    this.#runs.set(runId, { workflowName, apiOrigin });
  }

  insertStep(runId: string, address: string, facts: StepFacts, createdAt: number): void {
    if (!this.#runs.has(runId)) return;
    const step: MirroredStep = { ...facts, updatedAt: createdAt, runId, address, order: this.#localOrder++ };
    this.#steps.set(runId + sep + address, step);
    this.#refile(step);
  }

  patchStep(runId: string, address: string, patch: StepPatch): void {
    const step = this.#steps.get(runId + sep + address);
    if (!step) return;
    step.updatedAt = patch.updatedAt;
    if (patch.state !== undefined) step.state = patch.state;
    if (patch.attempt !== undefined) step.attempt = patch.attempt;
    if (patch.fingerprint !== undefined) step.fingerprint = patch.fingerprint ?? undefined;
    if (patch.requestId !== undefined) step.requestId = patch.requestId ?? undefined;
    if (patch.output !== undefined) step.output = patch.output ?? undefined;
    if (patch.files !== undefined) step.files = patch.files ?? undefined;
    if (patch.stdout !== undefined) step.stdout = patch.stdout ?? undefined;
    if (patch.finishedAt !== undefined) step.finishedAt = patch.finishedAt ?? undefined;
    this.#refile(step);
  }

  startAttempt(attempt: NewAttempt): void {
    const run = this.#runs.get(attempt.runId);
    const step = this.#steps.get(attempt.runId + sep + attempt.address);
    if (step) {
      step.attempt = attempt.attempt;
      step.requestId = attempt.reattach?.requestId;
      step.updatedAt = attempt.startedAt;
    }
    const tracked: TrackedAttempt = {
      workflowName: attempt.workflowName,
      order: this.#localOrder++,
      record: {
        runId: attempt.runId,
        address: attempt.address,
        attempt: attempt.attempt,
        fingerprint: attempt.fingerprint,
        state: attempt.reattach ? "submitted" : "submitting",
        requestId: attempt.reattach?.requestId,
        disposition: attempt.reattach ? "reattach" : "maybe_billed",
        startedAt: attempt.startedAt,
        submittedAt: attempt.reattach ? attempt.startedAt : undefined,
        apiOrigin: run?.apiOrigin,
      },
    };
    this.#attempts.set(this.#attemptId(attempt), tracked);
    this.#change(attempt.workflowName, (index) => index.setAttempt(tracked));
  }

  recordRequestId(key: AttemptKey, requestId: string, at: number): void {
    const step = this.#steps.get(key.runId + sep + key.address);
    if (step && step.attempt === key.attempt) {
      step.requestId = requestId;
      step.updatedAt = at;
    }
    const tracked = this.#attempts.get(this.#attemptId(key));
    if (!tracked) return;
    const record = tracked.record;
    record.requestId = requestId;
    record.submittedAt = at;
    record.disposition = "reattach";
    if (record.state === "submitting") record.state = "submitted";
    if (step) this.#refile(step);
  }

  patchAttempt(key: AttemptKey, patch: AttemptPatch): void {
    const tracked = this.#attempts.get(this.#attemptId(key));
    if (tracked && patch.state !== undefined) tracked.record.state = patch.state;
  }

  // -- Fetches.

  /** Starts (re)fetching a workflow's lookup; changes from now on are remembered for it. */
  beginFetch(workflowName: string): PriorRunsFetch {
    const replay: ((index: WorkflowIndex) => void)[] = [];
    this.#replay.set(workflowName, replay);
    return {
      complete: (succeeded, inFlight) => {
        const index = new WorkflowIndex();
        // What an earlier fetch brought is forgotten: another process may have closed it
        // since (a cluster's workers fetch again for every step). Still open, it is in `inFlight`.
        for (const [id, tracked] of this.#attempts)
          if (tracked.fetched && tracked.workflowName === workflowName) this.#attempts.delete(id);
        for (const row of succeeded) {
          index.setCandidate(row.fingerprint + sep + row.api_origin, {
            runId: row.run_id,
            address: row.address,
            finishedAt: row.finished_at,
            order: row.seq,
            reusable: reusableOf({
              runId: row.run_id,
              address: row.address,
              finishedAt: row.finished_at,
              requestId: row.request_id ?? undefined,
              output: row.output_json ?? undefined,
              files: row.files_json ?? undefined,
              stdout: row.stdout ?? undefined,
            }),
          });
        }
        for (const row of inFlight) {
          const id = [row.run_id, row.address, row.attempt].join(sep);
          // This store's own attempt: its record is the one later writes change.
          const tracked = this.#attempts.get(id) ?? {
            workflowName: row.workflow_name,
            order: row.seq,
            fetched: true,
            record: {
              runId: row.run_id,
              address: row.address,
              attempt: row.attempt,
              fingerprint: row.fingerprint,
              state: row.state as AttemptState,
              requestId: row.request_id ?? undefined,
              disposition: row.request_id === null ? ("maybe_billed" as const) : ("reattach" as const),
              startedAt: row.started_at,
              submittedAt: row.submitted_at ?? undefined,
              apiOrigin: row.api_origin ?? undefined,
            },
          };
          this.#attempts.set(id, tracked);
          index.setAttempt(tracked);
        }
        // This store's attempts of the workflow are known whatever their state: a closed
        // newest one still speaks for the older ones at its key.
        for (const tracked of this.#attempts.values())
          if (tracked.workflowName === workflowName) index.setAttempt(tracked);
        for (const change of replay) change(index);
        if (this.#replay.get(workflowName) === replay) this.#replay.delete(workflowName);
        this.#indexes.set(workflowName, index);
        return this.#lookupOf(workflowName);
      },
      abandon: () => {
        if (this.#replay.get(workflowName) === replay) this.#replay.delete(workflowName);
      },
    };
  }

  #lookupOf(workflowName: string): PriorRunsLookup {
    const existing = this.#lookups.get(workflowName);
    if (existing) return existing;
    const index = () => this.#indexes.get(workflowName)!;
    const asked = (name: string) => {
      if (name !== workflowName)
        throw new Error(`this lookup of earlier runs was made for workflow ${workflowName}, not ${name}`);
    };
    const inFlight = (filter: (tracked: TrackedAttempt) => boolean): TrackedAttempt[] =>
      [...index().newest.values()].filter((t) => OPEN.has(t.record.state) && filter(t));
    const lookup: PriorRunsLookup = {
      findSucceeded: (name: string, fingerprint: string, scope: ReuseScope) => {
        asked(name);
        const newest = index().succeeded.get(fingerprint + sep + scope.apiOrigin)?.[0];
        if (!newest || newest.finishedAt < (scope.notBefore ?? Number.MIN_SAFE_INTEGER)) return undefined;
        return newest.reusable;
      },
      inFlightAt: (name: string, fingerprint: string, address: string) => {
        asked(name);
        return inFlight((t) => t.record.fingerprint === fingerprint && t.record.address === address)
          .sort((a, b) => b.order - a.order)
          .map((t) => ({ ...t.record }));
      },
      listInFlight: (name: string) => {
        asked(name);
        return inFlight(() => true)
          .sort((a, b) => a.order - b.order)
          .map((t) => ({ ...t.record }));
      },
    };
    this.#lookups.set(workflowName, lookup);
    return lookup;
  }

  // -- Plumbing.

  #attemptId(key: AttemptKey): string {
    return [key.runId, key.address, key.attempt].join(sep);
  }

  /** Applies a change to a workflow's index now, and again to what its fetch on the way brings. */
  #change(workflowName: string, change: (index: WorkflowIndex) => void): void {
    const index = this.#indexes.get(workflowName);
    if (index) change(index);
    this.#replay.get(workflowName)?.push(change);
  }

  /** Files a step among the reuse candidates of its workflow, or takes it out. */
  #refile(step: MirroredStep): void {
    const run = this.#runs.get(step.runId);
    if (!run) return;
    const { runId, address } = step;
    if (step.state !== "succeeded" || step.fingerprint === undefined || run.apiOrigin === undefined) {
      this.#change(run.workflowName, (index) => index.removeCandidate(runId, address));
      return;
    }
    const finishedAt = step.finishedAt ?? step.updatedAt;
    const candidate: Candidate = {
      runId,
      address,
      finishedAt,
      order: step.order,
      reusable: reusableOf({ ...step, finishedAt }),
    };
    const key = step.fingerprint + sep + run.apiOrigin;
    this.#change(run.workflowName, (index) => index.setCandidate(key, candidate));
  }
}
