/**
 * The emulator's state and the parts every handler shares: the live config, the requests,
 * the log, submission counts, the rate limiter, and the injected clock and random source.
 */
import type { ModelRegistry } from "../models/index.js";
import { applyConfigPatch, type EmulatorConfig } from "./config.js";
import { RateLimiter } from "./rate-limiter.js";
import { requestIdSource } from "./request-ids.js";
import { PHASES, RequestBook, type EmulatedRequest, type Phase, type RequestState } from "./request-book.js";
import { RequestLog, type LogCounters } from "./request-log.js";
import { SubmissionTracker } from "./submissions.js";

export interface EmulatorState {
  /** Requests per lifecycle phase right now; `expired` ones are counted apart. */
  requests: Record<Phase | "expired", number> & { total: number };
  /** Requests held by `[emulator:hold]` and not released yet. */
  held: number;
  /** Calls kept unanswered by a `hold` fault until a release. */
  heldCalls: number;
  submissions: number;
  calls: LogCounters;
  /** What the requests that succeeded were charged (prices.ts): what `include_cost` reports. */
  billed: { usd: number; requests: number };
}

export interface CoreOptions {
  registry: ModelRegistry;
  random: () => number;
  now: () => number;
  deterministicIds: boolean;
  logBodies: boolean;
  startConfig: EmulatorConfig;
}

export class EmulatorCore {
  config: EmulatorConfig;
  /** Set once the server listens: the API base URL and the file host. */
  baseUrl = "";
  readonly registry: ModelRegistry;
  readonly random: () => number;
  readonly now: () => number;
  readonly book: RequestBook;
  readonly log: RequestLog;
  readonly submissions = new SubmissionTracker();
  readonly limiter = new RateLimiter();
  readonly newRequestId: () => string;
  private readonly startConfig: EmulatorConfig;
  /** Holds released by name: later requests held under them start released (until reset). */
  private readonly releasedHolds = new Set<string>();
  /** Every hold released at once: no later request is held (until reset). */
  private allHoldsReleased = false;
  /** Calls a `hold` fault keeps waiting: each answers at the next release. */
  private readonly heldCalls = new Set<() => void>();
  /** Token → small owner index, so requests remember their creator without keeping the token each. */
  private readonly owners = new Map<string, number>();

  constructor(options: CoreOptions) {
    this.registry = options.registry;
    this.random = options.random;
    this.now = options.now;
    this.startConfig = options.startConfig;
    this.config = applyConfigPatch(options.startConfig, {});
    this.book = new RequestBook(this.config.capacity);
    this.log = new RequestLog(options.logBodies);
    this.newRequestId = requestIdSource(options.deterministicIds);
  }

  /** Same checks as the control endpoint; throws UsageError on a bad setting and changes nothing then. */
  configure(patch: unknown): void {
    const next = applyConfigPatch(this.config, patch);
    this.book.setCapacity(next.capacity, this.now());
    this.config = next;
  }

  /** Forgets requests, the log and the counters, and restores the start config. */
  reset(): void {
    this.book.clear();
    this.log.clear();
    this.submissions.clear();
    this.limiter.reset();
    this.owners.clear();
    this.releasedHolds.clear();
    this.allHoldsReleased = false;
    this.config = applyConfigPatch(this.startConfig, {});
    this.book.setCapacity(this.config.capacity, this.now());
  }

  ownerOf(token: string): number {
    let owner = this.owners.get(token);
    if (owner === undefined) {
      owner = this.owners.size;
      this.owners.set(token, owner);
    }
    return owner;
  }

  /** The request's state, or "gone" when it was expired or outlived the retention. */
  stateOf(request: EmulatedRequest): RequestState | "gone" {
    if (request.expired) return "gone";
    const now = this.now();
    const state = this.book.stateOf(request, now);
    const retention = this.config.retention;
    if (retention !== null && state.finishedAt !== undefined && now - state.finishedAt >= retention)
      return "gone";
    return state;
  }

  expire(requestId: string): boolean {
    const request = this.book.get(requestId);
    if (!request) return false;
    this.book.expire(request, this.now());
    return true;
  }

  state(): EmulatorState {
    const requests = { total: this.book.size, expired: 0 } as EmulatorState["requests"];
    for (const phase of PHASES) requests[phase] = 0;
    // Summed in micro-dollars, as a client does: no float drift over thousands of requests.
    let billedMicros = 0;
    let billed = 0;
    for (const request of this.book.all()) {
      const state = this.stateOf(request);
      requests[state === "gone" ? "expired" : state.phase] += 1;
      const succeeded =
        state === "gone"
          ? this.book.stateOf(request, this.now()).phase === "succeeded"
          : state.phase === "succeeded";
      if (succeeded && request.costUsd !== undefined) {
        billedMicros += Math.round(request.costUsd * 1_000_000);
        billed += 1;
      }
    }
    return {
      requests,
      held: this.book.heldCount(),
      heldCalls: this.heldCalls.size,
      submissions: this.submissions.count,
      calls: this.log.stats(),
      billed: { usd: billedMicros / 1_000_000, requests: billed },
    };
  }

  /**
   * Releases held requests (those held under `name` when given) and opens the hold: later
   * requests with the same marker (a retry, a resumed apply) are not held. How many were released.
   */
  release(name?: string): number {
    if (name === undefined) this.allHoldsReleased = true;
    else this.releasedHolds.add(name);
    this.releaseCalls();
    return this.book.release(name, this.now());
  }

  /** Resolves at the next release (a call held by a `hold` fault). */
  holdCall(): Promise<void> {
    return new Promise((resolve) => this.heldCalls.add(resolve));
  }

  /** Lets every held call answer (a release, or the server closing). */
  releaseCalls(): void {
    for (const resolve of this.heldCalls) resolve();
    this.heldCalls.clear();
  }

  /** Whether a request marked `[emulator:hold=name]` is held now: not once its hold was released. */
  holds(name: string): boolean {
    return !this.allHoldsReleased && !this.releasedHolds.has(name);
  }
}
