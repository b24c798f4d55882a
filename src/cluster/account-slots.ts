/**
 * Request slots held account-wide (SPEC §10: `concurrency` and `limits` count every request
 * in flight at the API across all workers). A slot is a row of `request_slots`, taken under
 * an advisory lock per account — count the account's rows, in total and for the model, and
 * insert only when both are under their caps — and deleted when the request settles. The
 * account is the API origin and a digest of the token, never the token.
 *
 * A slot belongs to its step's request, not to the process that took it (`forStep`): the row
 * names the step (a step has one request at a time) and how long its request may run
 * (`held_until`: the taking plus the step's timeout). When its worker dies, the request may
 * still run at the API, unwatched, so the row stays counted while the step's last attempt is
 * open (`submitting`, `submitted`, `in_queue`, `in_progress` — the attempt, not the step's
 * state, which a redelivery rewrites to `waiting` before it re-attaches): the worker that
 * re-attaches to the step takes the row over at once, without waiting behind new
 * submissions, and the caps never count the request twice nor forget it. A dead worker's row
 * is freed by the next taker once its step is known not to run a request (its last attempt
 * ended, or none was claimed), or once `held_until` passed. An attempt judged `unknown` (its
 * claimant died after sending and before recording the id) keeps its slot until
 * `held_until`: the request may have been created and may run, and nobody can watch it, so
 * it counts as running for as long as the step would have let it run. Rows taken without a
 * step are freed as soon as their worker is dead. A worker that stops (SIGTERM) and hands
 * back a step whose request still runs leaves its slot with the request too: once it left
 * (its heartbeat row removed) the slot is a dead worker's, taken over by the worker that
 * re-attaches.
 *
 * A dead worker's steps come back to the queue behind everything queued since, and every live
 * worker's places can be held by deliveries waiting for a slot — for the very slots the dead
 * worker's requests hold. So a take refused while the account holds a slot of a dead worker
 * (within the grace) or of one that left, awaiting its takeover (its attempt open and not
 * `unknown`: PostgreSQL migration 9), does not wait: a step's delivery gives its place back to the queue
 * (GiveWayToTakeover; the worker delivers it again a second later) so the re-attaching
 * delivery can be handed out.
 *
 * A request refused a slot waits for a notice that one was freed (slot-notices.ts: every
 * delete here notifies in the same statement), with a slow timer as the safety net; without
 * notices (none given, or the listening connection is down) it asks again every 25–250 ms.
 *
 * A slot given back while a request of this process waits for one of the same model is handed
 * over to it instead (#handOver): the row is kept and renamed to the waiter's step in one
 * UPDATE, committed before the waiter goes on. The account's count and the model's stay as
 * they were, so both caps hold across processes as with a delete and a new take; the turn
 * costs one statement instead of a delete, a notice to every process, and a take under the
 * account's lock (and the takes of the other processes' waiters the notice woke for nothing).
 * The waiter that waited first gets it; a waiter of another process does not, though it may
 * have waited longer — the caps are what is promised, not an order between machines.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import type { RequestSlots } from "../engine/dispatcher.js";
import type { WaitReason } from "../engine/events.js";
import { WORKER_DEAD_AFTER_MS } from "../engine/worker-run.js";
import {
  type FreedSnapshot,
  SLOT_FREED_CHANNEL,
  slotFreedPayload,
  type SlotNotices,
} from "./slot-notices.js";

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The step a slot is taken for, and how long its request may run (its timeout). */
export interface SlotStep {
  runId: string;
  address: string;
  timeoutMs: number;
}

/** The account a token spends from at an API: never the token itself. */
export function accountOf(apiOrigin: string, token: string): string {
  return `${apiOrigin}#${createHash("sha256").update(token).digest("hex").slice(0, 16)}`;
}

/**
 * Take calls a process has out at once: a take asked for while that many are out waits for
 * one to return and goes with the others asked meanwhile, as one call. Three of the pool's
 * four sessions (the fourth for the releases): a take asked for alone goes at once, waiting
 * on PostgreSQL's lock rather than on another call's round trip, and a burst (a wave) still
 * costs a few calls, not one each. (With two, the waves after the first left their slots
 * idle ≈ 7 ms longer on average; docs/decisions.md "A wave's slots in one call".)
 */
const MOST_TAKE_CALLS_OUT = 3;
/** How often a waiting request asks again without notices (first, then at most). */
const RETRY_FIRST_MS = 25;
const RETRY_MAX_MS = 250;
/**
 * How long after its worker is dead a slot whose request may still run waits for the worker
 * that re-attaches to take it over before it is freed for others. BullMQ hands the step out
 * again ≤ 4 s after the kill (queues.ts), before the worker counts as dead (5 s); the waiting
 * deliveries give way to it (GiveWayToTakeover), so it normally comes well inside the grace.
 */
export const TAKEOVER_GRACE_MS = 3_000;
/** How often it asks again while it listens for notices: only in case one is lost. */
const SAFETY_POLL_MS = 1_000;

/**
 * A step's request that should not wait for its slot here: a dead worker's request awaits the
 * delivery that re-attaches to it, and that delivery needs a place in some worker — which every
 * waiting delivery holds (account-slots.ts "give way"). The step's worker gives its job back to
 * the queue, to be delivered again shortly; nothing was sent.
 */
export class GiveWayToTakeover extends Error {
  constructor() {
    super(
      "a dead worker's request awaits its takeover: this step's delivery gives its place back to the queue",
    );
    this.name = "GiveWayToTakeover";
  }
}

/** Why a take was refused, and whether a dead worker's request awaits its takeover meanwhile. */
interface Refusal {
  reason: WaitReason;
  awaitingTakeover: boolean;
}

/** A request of this process refused a slot, while it waits: a slot of its model may be handed to it. */
interface LocalWaiter {
  model: string;
  step: SlotStep | undefined;
  /** Ends its wait (for a notice, or its timer) once it is chosen. */
  chosen: AbortController;
  /** The slot handed over: its id, or undefined when the handover failed (it asks again). */
  handed: Deferred<string | undefined> | undefined;
}

export class AccountSlots implements RequestSlots {
  readonly #pool: pg.Pool;
  readonly #account: string;
  readonly #worker: string;
  readonly #concurrency: number;
  readonly #limits: Readonly<Record<string, number>>;
  readonly #stopSignal: AbortSignal | undefined;
  readonly #now: () => number;
  readonly #notices: SlotNotices | undefined;
  readonly #safetyPollMs: number;
  /** Takes asked for and not sent yet: they go together as the next call (#flush). */
  #asked: { model: string; step: SlotStep | undefined; answer: Deferred<string | Refusal> }[] = [];
  /** Calls out now, and whether one is due at the end of this turn. */
  #calls = 0;
  #flushDue = false;
  /** This process's requests waiting for a slot, in the order they began to wait. */
  readonly #waiting: LocalWaiter[] = [];

  constructor(options: {
    pool: pg.Pool;
    account: string;
    worker: string;
    concurrency: number;
    limits: Readonly<Record<string, number>>;
    /** The run stopped submitting: a request waiting for a slot stops waiting (RunRequestSlots). */
    stopSignal?: AbortSignal | undefined;
    now?: () => number;
    /** This process's listener of freed slots; without it, waits poll. */
    notices?: SlotNotices | undefined;
    /** How often a waiter that listens asks again anyway (default 1 s). */
    safetyPollMs?: number;
  }) {
    this.#pool = options.pool;
    this.#account = options.account;
    this.#worker = options.worker;
    this.#concurrency = options.concurrency;
    this.#limits = options.limits;
    this.#stopSignal = options.stopSignal;
    this.#now = options.now ?? Date.now;
    this.#notices = options.notices;
    this.#safetyPollMs = options.safetyPollMs ?? SAFETY_POLL_MS;
  }

  /** Slots held by no step: freed as soon as their worker is dead. */
  run<T>(
    model: string | undefined,
    task: (release: () => void) => Promise<T>,
    onWait?: (reason: WaitReason) => void,
  ): Promise<T> {
    return this.#run(undefined, model, task, onWait);
  }

  /** The slots of one step's requests: kept for its request when the worker dies (above). */
  forStep(step: SlotStep): RequestSlots {
    return { run: (model, task, onWait) => this.#run(step, model, task, onWait) };
  }

  async #run<T>(
    step: SlotStep | undefined,
    model: string | undefined,
    task: (release: () => void) => Promise<T>,
    onWait?: (reason: WaitReason) => void,
  ): Promise<T> {
    const slot = await this.#acquire(model ?? "", step, onWait);
    // The run stopped while this waited: its task sends nothing, so it takes no slot.
    if (slot === undefined) return task(() => undefined);
    // Given back once: early, when the request finished at the API (what follows is local
    // work), else when the task settles.
    let released: Promise<unknown> | undefined;
    const release = () => {
      if (released !== undefined) return;
      // A worker that stops hands nothing over: its waiters will not submit.
      const heir = this.#stopSignal?.aborted ? undefined : this.#chooseHeir(model ?? "");
      released = heir ? this.#handOver(slot, model ?? "", heir) : this.#free(slot, model ?? "");
    };
    try {
      return await task(release);
    } finally {
      // Handed back (this worker stops) while its request still runs: the slot stays with
      // the request, for the worker that re-attaches (it is this one's until it leaves).
      if (step && this.#stopSignal?.aborted && released === undefined) {
        released = this.#pool
          .query(
            `DELETE FROM request_slots s WHERE s.id = $1
               AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = $4 AND a.address = $5
                               AND a.state IN ('submitting', 'submitted', 'in_queue', 'in_progress')
                               AND a.attempt = (SELECT max(b.attempt) FROM attempts b
                                                WHERE b.run_id = $4 AND b.address = $5))
             RETURNING pg_notify($2, $3)`,
            [
              slot,
              SLOT_FREED_CHANNEL,
              slotFreedPayload(this.#account, model ?? ""),
              step.runId,
              step.address,
            ],
          )
          .catch(() => undefined);
      }
      release();
      await released;
    }
  }

  /** Deletes the slot; the notice goes out when the delete commits: a waiter that hears it finds it free. */
  #free(slot: string, model: string): Promise<unknown> {
    return this.#pool
      .query("DELETE FROM request_slots WHERE id = $1 RETURNING pg_notify($2, $3)", [
        slot,
        SLOT_FREED_CHANNEL,
        slotFreedPayload(this.#account, model),
      ])
      .catch(() => undefined);
  }

  /** The first of this process's waiters that a slot of `model` may serve; taken off the list. */
  #chooseHeir(model: string): LocalWaiter | undefined {
    const at = this.#waiting.findIndex((waiter) => waiter.model === model);
    if (at < 0) return undefined;
    const heir = this.#waiting.splice(at, 1)[0]!;
    heir.handed = deferred();
    heir.chosen.abort();
    return heir;
  }

  /**
   * Renames the slot's row to the heir's step (the caps count the same rows) and gives the
   * heir its id once committed: from then on a crash leaves the row with the heir's request,
   * as a take would have. A row no longer this worker's (never expected of a live worker) is
   * not handed over: it is deleted as usual, and the heir asks again.
   */
  async #handOver(slot: string, model: string, heir: LocalWaiter): Promise<void> {
    const now = this.#now();
    const step = heir.step;
    const renamed = await this.#pool
      .query(
        `UPDATE request_slots SET run_id = $3, address = $4, held_until = $5, acquired_at = $6
         WHERE id = $1 AND worker = $2`,
        [
          slot,
          this.#worker,
          step?.runId ?? null,
          step?.address ?? null,
          step ? now + step.timeoutMs : null,
          now,
        ],
      )
      .then(
        (result) => result.rowCount === 1,
        () => false,
      );
    if (renamed) return heir.handed!.resolve(slot);
    heir.handed!.resolve(undefined);
    await this.#free(slot, model);
  }

  /** The slot's id; undefined when the run stopped submitting first. */
  async #acquire(
    model: string,
    step: SlotStep | undefined,
    onWait: ((reason: WaitReason) => void) | undefined,
  ): Promise<string | undefined> {
    let told: WaitReason["kind"] | undefined;
    for (let wait = RETRY_FIRST_MS; ; wait = Math.min(RETRY_MAX_MS, wait * 2)) {
      if (this.#stopSignal?.aborted) return undefined;
      // Listening before the attempt: a slot freed after the count is heard, not missed.
      const notices = (await this.#notices?.listen()) ? this.#notices : undefined;
      const since = notices?.snapshot(this.#account, model);
      const taken = await this.#tryAcquire(model, step);
      if (typeof taken === "string") return taken;
      // A step's delivery gives its place back rather than hold it while a dead worker's
      // request waits for the re-attaching delivery (GiveWayToTakeover).
      if (taken.awaitingTakeover && step) throw new GiveWayToTakeover();
      if (taken.reason.kind !== told) {
        told = taken.reason.kind;
        onWait?.(taken.reason);
      }
      const handed = await this.#wait(model, step, taken.reason, wait, notices, since);
      if (handed !== undefined) return handed;
    }
  }

  /**
   * Waits for a notice (or the timer) before the next take; ends early with the id of a slot
   * handed over meanwhile by a request of this process (#handOver).
   */
  async #wait(
    model: string,
    step: SlotStep | undefined,
    refused: WaitReason,
    retryMs: number,
    notices: SlotNotices | undefined,
    since: FreedSnapshot | undefined,
  ): Promise<string | undefined> {
    const waiter: LocalWaiter = { model, step, chosen: new AbortController(), handed: undefined };
    this.#waiting.push(waiter);
    // The run's stop ends the wait too (forwarded by hand: a long-lived worker waits often).
    const stop = this.#stopSignal;
    const stopped = () => waiter.chosen.abort();
    if (stop?.aborted) stopped();
    else stop?.addEventListener("abort", stopped, { once: true });
    const signal = waiter.chosen.signal;
    try {
      if (notices && since && (refused.kind === "limit" || refused.kind === "concurrency")) {
        await notices.wait(this.#account, model, refused.kind, since, this.#safetyPollMs, signal);
      } else await sleep(retryMs, undefined, { signal }).catch(() => undefined);
    } finally {
      stop?.removeEventListener("abort", stopped);
      const at = this.#waiting.indexOf(waiter);
      if (at >= 0) this.#waiting.splice(at, 1);
    }
    return waiter.handed?.promise;
  }

  /**
   * The slot's id, or why none is free: one take of runflow_take_slot (PostgreSQL migration
   * 6), under the account's advisory lock, as one transaction:
   * the step's own slot, left by a dead worker (or by this one) while its request may still
   * run, is taken over without waiting — that request is the one this re-attaches to. Else a
   * dead worker's slots come back once their step runs no request (above), and the other
   * waiters hear of it at the commit. One whose request may still run but which no worker
   * re-attached to within TAKEOVER_GRACE_MS of the death comes back too: the re-attaching
   * delivery can be stuck behind steps that wait, in every live worker, for this very slot
   * (BullMQ hands a worker no more jobs than its concurrency), and the batch would stall
   * until the step's timeout. An `unknown` attempt's is kept (above), and so is the slot of a
   * worker that left (SIGTERM) handing its step back: its step is queued again at once, and
   * when it left is not recorded. Then the account's rows are counted, in total and for the
   * model, and a row is inserted when both are under their caps. The commit is durable: the
   * caps of every worker stand on these rows, after a crash too.
   *
   * The takes this process asks for while its previous call is out go together as one call
   * of runflow_take_slots (migration 8: runflow_take_slot for each, in the order asked, in
   * one transaction): a wave's takes cost a round trip, a turn of the lock and a commit for
   * the lot instead of one each, queued behind each other for the lock.
   */
  #tryAcquire(model: string, step: SlotStep | undefined): Promise<string | Refusal> {
    const answer = deferred<string | Refusal>();
    this.#asked.push({ model, step, answer });
    if (!this.#flushDue && this.#calls < MOST_TAKE_CALLS_OUT) {
      this.#flushDue = true;
      // The end of this turn: the takes asked for in it go in the same call.
      queueMicrotask(() => void this.#flush());
    }
    return answer.promise;
  }

  /** Sends the takes asked for so far as one call; then the ones asked for meanwhile. */
  async #flush(): Promise<void> {
    this.#flushDue = false;
    const asked = this.#asked;
    // Taken already by a call that returned meanwhile.
    if (asked.length === 0) return;
    this.#asked = [];
    this.#calls++;
    const now = this.#now();
    const liveSince = now - WORKER_DEAD_AFTER_MS;
    try {
      const { rows } = await this.#pool.query<{ n: number; slot_id: string | null; refused: string | null }>(
        "SELECT n, slot_id, refused FROM runflow_take_slots($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        [
          this.#account,
          this.#worker,
          now,
          liveSince,
          liveSince - TAKEOVER_GRACE_MS,
          SLOT_FREED_CHANNEL,
          asked.map(({ model }) => model),
          asked.map(({ step }) => step?.runId ?? null),
          asked.map(({ step }) => step?.address ?? null),
          asked.map(({ step }) => (step ? now + step.timeoutMs : null)),
          asked.map(() => this.#concurrency),
          asked.map(({ model }) => this.#limits[model] ?? null),
        ],
      );
      const byTake = new Map(rows.map((row) => [row.n, row]));
      asked.forEach(({ model, answer }, i) => {
        const row = byTake.get(i + 1);
        if (!row) return answer.reject(new Error(`runflow_take_slots gave no answer for take ${i + 1}`));
        if (row.slot_id !== null) return answer.resolve(String(row.slot_id));
        const [kind, takeover] = (row.refused ?? "").split("+");
        const limit = this.#limits[model];
        answer.resolve({
          reason:
            kind === "limit" && limit !== undefined
              ? { kind: "limit", model, limit }
              : { kind: "concurrency", concurrency: this.#concurrency },
          awaitingTakeover: takeover === "takeover",
        });
      });
    } catch (error) {
      for (const { answer } of asked) answer.reject(error);
    }
    this.#calls--;
    if (this.#asked.length > 0 && !this.#flushDue) void this.#flush();
  }
}
