/**
 * Every request the emulator accepted, and where each one is in its lifecycle
 * (in_queue → in_progress → succeeded | failed, or cancelled while queued).
 *
 * Nothing is scheduled with timers: a request's state is computed from the clock when it is
 * asked for, so a hundred thousand requests cost memory and no wake-ups.
 *
 * Invariants: requests start in submission order; a request starts at the later of its
 * `readyAt` (creation + queue delay) and the moment one of `capacity` slots frees. Starts are
 * fixed lazily, by `advance(now)`, and only once they lie at or before `now`: until then a
 * cancel of an earlier queued request may still bring them forward.
 *
 * A held request (`[emulator:hold]`) stays in_progress, keeping its slot, until it is
 * released; then it ends at the later of its release and its normal end. Tests use it to
 * order processes by state instead of by durations.
 */
import { MinHeap } from "./min-heap.js";

/**
 * What a request makes. `broken` (a prompt marker) makes its succeeded /result carry no
 * usable output: `output` absent, `{}`, or a bare string.
 */
export type OutputSpec = (
  { kind: "video"; bytes?: number } | { kind: "image"; width: number; height: number }
) & {
  broken?: BrokenOutput;
};

export const BROKEN_OUTPUTS = ["missing", "empty", "text"] as const;
export type BrokenOutput = (typeof BROKEN_OUTPUTS)[number];

export interface NewRequest {
  readonly id: string;
  readonly modelId: string;
  /** Which API token created it (an index, so the token itself is not kept per request). */
  readonly owner: number;
  readonly createdAt: number;
  /** The earliest moment it may start: creation + queue delay. */
  readonly readyAt: number;
  readonly durationMs: number;
  /** Set when the request is to end `failed`: the error message. */
  readonly failure?: string | undefined;
  readonly output: OutputSpec;
  /** Set when the request is held in progress until released: the hold's name ("" unnamed). */
  readonly hold?: string | undefined;
  /** What it costs in USD once it succeeds (prices.ts); undefined for a model without a price. */
  readonly costUsd?: number | undefined;
}

export interface EmulatedRequest extends NewRequest {
  /** Its place in the submission order. */
  readonly queueSeq: number;
  startedAt: number | undefined;
  cancelledAt: number | undefined;
  expired: boolean;
  /** When a held request was released; undefined while it is still held (or never was). */
  releasedAt: number | undefined;
}

export const PHASES = ["in_queue", "in_progress", "succeeded", "failed", "cancelled"] as const;
export type Phase = (typeof PHASES)[number];

export interface RequestState {
  phase: Phase;
  /** 1 = the next to start; only while in_queue. */
  queuePosition?: number;
  /** When it reached a terminal phase. */
  finishedAt?: number;
}

export type CancelOutcome = "cancelled" | "not_cancellable";

/** Index of the first element of the ascending `sorted` that is ≥ `value`. */
function lowerBound(sorted: readonly number[], value: number, from = 0): number {
  let low = from;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((sorted[mid] as number) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** When a started request ends: never while it is held, else its duration after its start (or its release). */
function endOf(request: EmulatedRequest, startedAt: number): number {
  const end = startedAt + request.durationMs;
  if (request.hold === undefined) return end;
  return request.releasedAt === undefined ? Number.POSITIVE_INFINITY : Math.max(end, request.releasedAt);
}

export class RequestBook {
  private readonly byId = new Map<string, EmulatedRequest>();
  /** Requests not yet started, in submission order; `head` is the next candidate. */
  private waiting: EmulatedRequest[] = [];
  private head = 0;
  /** queueSeq of requests withdrawn from `waiting` (cancelled or expired), ascending from `withdrawnHead`. */
  private withdrawn: number[] = [];
  private withdrawnHead = 0;
  /** The end times of the requests occupying slots; only used when capacity is limited. */
  private readonly slots = new MinHeap();
  private nextSeq = 0;
  /** Held requests not released yet. */
  private readonly held = new Set<EmulatedRequest>();

  constructor(private capacity: number | null) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): EmulatedRequest | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<EmulatedRequest> {
    return this.byId.values();
  }

  add(request: NewRequest): EmulatedRequest {
    // Spelled out, not spread: V8 keeps a literal's fields in a compact shape (≈40% smaller).
    const entry: EmulatedRequest = {
      id: request.id,
      modelId: request.modelId,
      owner: request.owner,
      createdAt: request.createdAt,
      readyAt: request.readyAt,
      durationMs: request.durationMs,
      failure: request.failure,
      output: request.output,
      hold: request.hold,
      costUsd: request.costUsd,
      queueSeq: this.nextSeq++,
      startedAt: undefined,
      cancelledAt: undefined,
      expired: false,
      releasedAt: undefined,
    };
    this.byId.set(entry.id, entry);
    if (entry.hold !== undefined) this.held.add(entry);
    this.waiting.push(entry);
    return entry;
  }

  /** Fixes the start of every queued request whose start lies at or before `now`. */
  advance(now: number): void {
    const waiting = this.waiting;
    while (this.head < waiting.length) {
      const next = waiting[this.head] as EmulatedRequest;
      if (next.cancelledAt !== undefined) {
        this.head++;
        continue;
      }
      const startAt = this.startTimeOf(next);
      if (startAt > now) break;
      if (this.capacity !== null) {
        if (this.slots.size >= this.capacity) this.slots.pop();
        this.slots.push(endOf(next, startAt));
      }
      next.startedAt = startAt;
      this.head++;
    }
    this.compact();
  }

  private startTimeOf(request: EmulatedRequest): number {
    if (this.capacity === null || this.slots.size < this.capacity) return request.readyAt;
    return Math.max(request.readyAt, this.slots.peek() as number);
  }

  /** Drops the already-started prefix of `waiting` once it is the larger part. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    const first = this.waiting[this.head];
    const firstSeq = first === undefined ? this.nextSeq : first.queueSeq;
    this.withdrawnHead = lowerBound(this.withdrawn, firstSeq, this.withdrawnHead);
    if (this.withdrawnHead > 1024 && this.withdrawnHead * 2 > this.withdrawn.length) {
      this.withdrawn = this.withdrawn.slice(this.withdrawnHead);
      this.withdrawnHead = 0;
    }
  }

  stateOf(request: EmulatedRequest, now: number): RequestState {
    if (request.cancelledAt !== undefined) return { phase: "cancelled", finishedAt: request.cancelledAt };
    if (request.startedAt === undefined) this.advance(now);
    const startedAt = request.startedAt;
    if (startedAt === undefined) return { phase: "in_queue", queuePosition: this.queuePositionOf(request) };
    const finishedAt = endOf(request, startedAt);
    if (now < finishedAt) return { phase: "in_progress" };
    return { phase: request.failure === undefined ? "succeeded" : "failed", finishedAt };
  }

  /**
   * The most requests that existed unfinished at once (from creation to their end — queued,
   * in progress, or not ended yet at `now`), in total and per model: what a client's
   * `concurrency` and `limits` must keep under, whatever number of processes submitted them.
   */
  peakInFlight(now: number): { total: number; byModel: Record<string, number> } {
    const changes: Array<{ at: number; model: string; delta: 1 | -1 }> = [];
    for (const request of this.byId.values()) {
      changes.push({ at: request.createdAt, model: request.modelId, delta: 1 });
      const finishedAt = this.stateOf(request, now).finishedAt;
      if (finishedAt !== undefined) changes.push({ at: finishedAt, model: request.modelId, delta: -1 });
    }
    // An end and a start at the same moment do not overlap: ends first.
    changes.sort((a, b) => a.at - b.at || a.delta - b.delta);
    const current = new Map<string, number>();
    const byModel: Record<string, number> = {};
    let total = 0;
    let peak = 0;
    for (const { model, delta } of changes) {
      total += delta;
      peak = Math.max(peak, total);
      const count = (current.get(model) ?? 0) + delta;
      current.set(model, count);
      byModel[model] = Math.max(byModel[model] ?? 0, count);
    }
    return { total: peak, byModel };
  }

  /** 1 + the number of live requests ahead of `request` (which must still be waiting). */
  private queuePositionOf(request: EmulatedRequest): number {
    const first = this.waiting[this.head];
    if (first === undefined) return 1;
    const withdrawnAhead =
      lowerBound(this.withdrawn, request.queueSeq, this.withdrawnHead) -
      lowerBound(this.withdrawn, first.queueSeq, this.withdrawnHead);
    return 1 + request.queueSeq - first.queueSeq - withdrawnAhead;
  }

  /** Cancels `request` if it is still queued; a started or finished request is left alone. */
  cancel(request: EmulatedRequest, now: number): CancelOutcome {
    if (request.cancelledAt !== undefined) return "cancelled";
    if (request.startedAt === undefined) this.advance(now);
    if (request.startedAt !== undefined) return "not_cancellable";
    this.withdraw(request, now);
    return "cancelled";
  }

  /** The request is gone (404 from now on); a queued one also leaves the queue. */
  expire(request: EmulatedRequest, now: number): void {
    if (request.startedAt === undefined) this.advance(now);
    if (request.startedAt === undefined && request.cancelledAt === undefined) this.withdraw(request, now);
    request.expired = true;
  }

  private withdraw(request: EmulatedRequest, now: number): void {
    request.cancelledAt = now;
    this.held.delete(request);
    // Withdrawals come in any order; keep the list sorted for the position count.
    this.withdrawn.splice(lowerBound(this.withdrawn, request.queueSeq), 0, request.queueSeq);
  }

  /**
   * A new slot count for requests that start from now on. Requests already running keep
   * their slots: with fewer slots than runners, the next start waits for enough of them.
   */
  setCapacity(capacity: number | null, now: number): void {
    if (capacity === this.capacity) return;
    this.advance(now);
    this.capacity = capacity;
    this.rebuildSlots(now);
  }

  /** The slots as the running requests occupy them now (after a capacity change or a release). */
  private rebuildSlots(now: number): void {
    this.slots.clear();
    const capacity = this.capacity;
    if (capacity === null) return;
    const runningEnds: number[] = [];
    for (const request of this.byId.values()) {
      if (request.startedAt === undefined || request.cancelledAt !== undefined) continue;
      const end = endOf(request, request.startedAt);
      if (end > now) runningEnds.push(end);
    }
    // With `capacity` slots, a new start waits for the `capacity` latest-ending runners.
    runningEnds.sort((a, b) => b - a);
    for (const end of runningEnds.slice(0, capacity)) this.slots.push(end);
  }

  /** Requests held and not yet released, under `name` when given. */
  heldCount(name?: string): number {
    let count = 0;
    for (const request of this.held) if (name === undefined || request.hold === name) count++;
    return count;
  }

  /**
   * Releases the held requests (those held under `name` when given): each ends at the later
   * of now and its normal end. Returns how many were released.
   */
  release(name: string | undefined, now: number): number {
    this.advance(now);
    let released = 0;
    for (const request of this.held) {
      if (name !== undefined && request.hold !== name) continue;
      request.releasedAt = now;
      this.held.delete(request);
      released++;
    }
    if (released > 0) this.rebuildSlots(now);
    return released;
  }

  clear(): void {
    this.byId.clear();
    this.waiting = [];
    this.head = 0;
    this.withdrawn = [];
    this.withdrawnHead = 0;
    this.slots.clear();
    this.held.clear();
    this.nextSeq = 0;
  }
}
