/**
 * What the live view knows about a run, folded from the event stream alone. Each event costs
 * O(1) (10,000 jobs send tens of thousands of events); drawing reads only what fits on the
 * screen. Timestamps come from the events, so the model is exact under test.
 */
import { microsFromUsd } from "../../cost/money.js";
import type {
  RunEvent,
  RunFinishedEvent,
  RunStartedEvent,
  StepEvent,
  StepWaitEvent,
  WaitReason,
} from "../../engine/events.js";
import { DISPLAY_GROUP, type StepState } from "../../engine/states.js";
import { groupCounts, type DisplayGroup } from "../vocabulary.js";

export type { DisplayGroup };

/** A step that has work in flight: its job is listed as active. */
const IN_FLIGHT: ReadonlySet<StepState> = new Set<StepState>([
  "submitting",
  "in_queue",
  "in_progress",
  "running",
  "downloading",
]);

/** Ends that cost real work; reused and blocked steps end instantly and would inflate throughput. */
const WORKED_ENDS: ReadonlySet<StepState> = new Set<StepState>([
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "unknown",
]);

/** Failures worth showing after their job left the active list. */
const VISIBLE_FAILURES: ReadonlySet<StepState> = new Set<StepState>(["failed", "timed_out", "unknown"]);

/** Throughput is measured over this much recent time. */
export const THROUGHPUT_WINDOW_MS = 60_000;
/** A job that just failed stays listed this long, so its error can be read. */
export const FAILURE_LINGER_MS = 10_000;
/** A notice stays under the list this long. */
export const NOTICE_LINGER_MS = 30_000;

export interface StepView {
  step: string;
  state: StepState;
  /** When it entered this state (a repeated `in_queue` with a new position keeps the time). */
  since: number;
  attempt: number;
  queuePosition: number | undefined;
  error: string | undefined;
  /** Why it is not moving, while it says so (a limit, the run's slots, a backoff). */
  wait: WaitReason | undefined;
  /** Its model, once an event named it. */
  model: string | undefined;
  /** Micro-dollars its attempts cost so far, as its last end said (step events carry the step's total). */
  costMicros?: number | undefined;
}

export interface JobView {
  /** `JOB/KEY`. */
  key: string;
  /** In the order they were first heard of. */
  steps: StepView[];
  inFlight: number;
  /** When the job joined the list it is in (active, or recently failed). */
  listedAt: number;
}

export interface RunHeader {
  runId: string;
  workflow: string;
  kind: RunStartedEvent["kind"];
  startedAt: number;
  totalSteps: number;
  totalJobs: number;
  concurrency: number;
  limits: Readonly<Record<string, number>>;
  /** The apply's budget in micro-dollars (`--max-cost`), when it has one. */
  maxCostMicros: number | undefined;
}

/** Steps waiting for one reason, for the header: `2 waiting for the limit of MODEL (2 at once)`. */
export interface WaitGroup {
  reason: WaitReason;
  steps: number;
}

/** What the ETA needs: the work left per model, how long each model's requests take, the slots. */
export interface EtaInput {
  /** Model steps not ended yet, per model. */
  remainingByModel: ReadonlyMap<string, number>;
  /** Learned typical request durations, per model (typical-durations.ts). */
  typicalMs: ReadonlyMap<string, number>;
  concurrency: number;
  limits: Readonly<Record<string, number>>;
  /** Other steps not ended (local programs, steps of models not known yet). */
  otherRemaining: number;
  /** Steps ended per minute lately, for what the durations cannot cover. */
  throughputPerMinute: number | undefined;
}

/**
 * Time left, from the durations learned per model and the slots each model gets: a model
 * with n steps left of d ms each and s slots (its `limits` entry, at most `concurrency`)
 * needs n·d/s, and all models share `concurrency` slots, so the run needs at least the
 * larger of the slowest model's time and the whole work over `concurrency`. Steady from the
 * first finished request on, where the throughput so far swings with every burst of ends.
 * Falls back to the throughput while a model with steps left has no duration yet; undefined
 * when neither is known.
 */
export function estimateRemainingMs(input: EtaInput): number | undefined {
  const concurrency = Math.max(1, input.concurrency);
  let slowestModel = 0;
  let totalWork = 0;
  let modelSteps = 0;
  for (const [model, steps] of input.remainingByModel) {
    if (steps <= 0) continue;
    const typical = input.typicalMs.get(model);
    if (typical === undefined) return byThroughput(input);
    const slots = Math.max(1, Math.min(input.limits[model] ?? concurrency, concurrency));
    slowestModel = Math.max(slowestModel, (steps * typical) / slots);
    totalWork += steps * typical;
    modelSteps += steps;
  }
  if (modelSteps === 0) return input.otherRemaining === 0 ? 0 : byThroughput(input);
  const byDurations = Math.max(slowestModel, totalWork / concurrency);
  const others = input.otherRemaining > 0 ? byThroughput(input) : 0;
  return Math.max(byDurations, others ?? 0);
}

function byThroughput(input: EtaInput): number | undefined {
  let remaining = input.otherRemaining;
  for (const steps of input.remainingByModel.values()) remaining += Math.max(0, steps);
  if (remaining === 0) return 0;
  const rate = input.throughputPerMinute;
  return rate === undefined || rate <= 0 ? undefined : (remaining / rate) * 60_000;
}

const ENDED_GROUPS: ReadonlySet<string> = new Set(["done", "reused", "failed"]);

/** A step that lists its job among the active ones: work in flight, or a reason it waits for. */
function isListed(step: StepView): boolean {
  return IN_FLIGHT.has(step.state) || step.wait !== undefined;
}

function waitKey(reason: WaitReason): string {
  return reason.kind === "limit" ? `limit\u0000${reason.model}` : reason.kind;
}

export class ProgressModel {
  header: RunHeader | undefined;
  finished: RunFinishedEvent | undefined;
  notice: { level: "info" | "warn"; message: string; at: number } | undefined;
  /** While the API keeps failing: since when, and its last error. */
  apiUnreachable: { since: number; error: string } | undefined;
  readonly counts: Record<DisplayGroup, number> = groupCounts({});
  /** Events applied so far (the bench reports cost per event). */
  events = 0;
  /** What the run's steps cost so far (reported costs), in micro-dollars: shown against the budget. */
  spentMicros = 0;

  readonly #jobs = new Map<string, JobView>();
  /** Jobs with a step in flight, oldest first. */
  readonly #active = new Map<string, JobView>();
  /** Jobs that just ended with a failure, oldest first. */
  readonly #recentFailures = new Map<string, JobView>();
  /** Times of recent worked ends; a queue read from `#completionsHead`. */
  #completions: number[] = [];
  #completionsHead = 0;
  /** Steps waiting, per reason (waitKey). */
  readonly #waits = new Map<string, WaitGroup>();
  readonly #typical = new Map<string, number>();
  /** Model steps not ended, per model: the plan's counts, less every end seen. */
  readonly #remainingByModel = new Map<string, number>();

  apply(event: RunEvent): void {
    this.events += 1;
    switch (event.event) {
      case "run_started":
        this.header = {
          runId: event.runId,
          workflow: event.workflow,
          kind: event.kind,
          startedAt: event.at,
          totalSteps: event.steps,
          totalJobs: event.jobs,
          concurrency: event.concurrency,
          limits: event.limits ?? {},
          maxCostMicros: event.maxCostUsd === undefined ? undefined : microsFromUsd(event.maxCostUsd),
        };
        for (const [model, steps] of Object.entries(event.models ?? {})) {
          this.#remainingByModel.set(model, steps);
        }
        // Every step starts pending: queued until an event says otherwise.
        this.counts.queued = event.steps;
        break;
      case "step":
        this.#applyStep(event);
        break;
      case "step_wait":
        this.#applyWait(event);
        break;
      case "api_unreachable":
        this.apiUnreachable = { since: event.since, error: event.error };
        break;
      case "api_recovered":
        this.apiUnreachable = undefined;
        break;
      case "typical_duration":
        this.#typical.set(event.model, event.typicalMs);
        break;
      case "notice":
        this.notice = { level: event.level, message: event.message, at: event.at };
        break;
      case "run_finished":
        this.finished = event;
        break;
    }
  }

  #applyStep(event: StepEvent): void {
    let job = this.#jobs.get(event.job);
    if (!job) {
      job = { key: event.job, steps: [], inFlight: 0, listedAt: event.at };
      this.#jobs.set(event.job, job);
    }
    let step = job.steps.find((candidate) => candidate.step === event.step);
    if (!step) {
      // Every step starts pending (run_started counted it as queued).
      step = {
        step: event.step,
        state: "pending",
        since: event.at,
        attempt: 0,
        queuePosition: undefined,
        error: undefined,
        wait: undefined,
        model: event.model,
      };
      job.steps.push(step);
    }
    const wasListed = isListed(step);
    // Its next state ends whatever it waited for.
    this.#setWait(step, undefined);
    if (event.model !== undefined) step.model = event.model;
    const from = step.state;
    // Counted from the state the view holds, not the event's `previous`: the two agree on a
    // complete stream, and the header stays consistent even if one were to differ.
    this.counts[DISPLAY_GROUP[from]] -= 1;
    this.counts[DISPLAY_GROUP[event.state]] += 1;
    const changed = from !== event.state;
    if (changed && WORKED_ENDS.has(event.state)) this.#completions.push(event.at);
    const wasEnded = ENDED_GROUPS.has(DISPLAY_GROUP[from]);
    const isEnded = ENDED_GROUPS.has(DISPLAY_GROUP[event.state]);
    if (wasEnded !== isEnded && step.model !== undefined && this.#remainingByModel.has(step.model)) {
      this.#remainingByModel.set(
        step.model,
        (this.#remainingByModel.get(step.model) ?? 0) + (isEnded ? -1 : 1),
      );
    }

    if (event.cost !== undefined) {
      // The event says the step's total so far: only what is new is added.
      const micros = microsFromUsd(event.cost) ?? 0;
      this.spentMicros += micros - (step.costMicros ?? 0);
      step.costMicros = micros;
    }
    if (changed) step.since = event.at;
    step.state = event.state;
    step.attempt = event.attempt;
    step.queuePosition = event.state === "in_queue" ? event.queuePosition : undefined;
    // An error stays with the step while it waits for its next attempt; success clears it.
    if (event.error !== undefined) step.error = event.error;
    else if (event.state === "succeeded" || event.state === "reused") step.error = undefined;

    const nowListed = isListed(step);
    if (wasListed !== nowListed) job.inFlight += nowListed ? 1 : -1;
    if (job.inFlight > 0) {
      if (!this.#active.has(job.key)) {
        this.#recentFailures.delete(job.key);
        job.listedAt = event.at;
        this.#active.set(job.key, job);
      }
      return;
    }
    this.#active.delete(job.key);
    if (changed && VISIBLE_FAILURES.has(event.state)) {
      // Re-inserted so the list stays ordered by when each job failed.
      this.#recentFailures.delete(job.key);
      job.listedAt = event.at;
      this.#recentFailures.set(job.key, job);
    }
  }

  #applyWait(event: StepWaitEvent): void {
    const step = this.#jobs.get(event.job)?.steps.find((candidate) => candidate.step === event.step);
    // A wait is about a step already heard of (it went `waiting`, or is remote).
    if (!step) return;
    const job = this.#jobs.get(event.job)!;
    const wasListed = isListed(step);
    this.#setWait(step, event.reason);
    const nowListed = isListed(step);
    if (wasListed === nowListed) return;
    // A step waiting for a reason lists its job, so the reason can be read.
    job.inFlight += nowListed ? 1 : -1;
    if (job.inFlight > 0 && !this.#active.has(job.key)) {
      this.#recentFailures.delete(job.key);
      job.listedAt = event.at;
      this.#active.set(job.key, job);
    } else if (job.inFlight === 0) this.#active.delete(job.key);
  }

  #setWait(step: StepView, reason: WaitReason | undefined): void {
    if (step.wait) {
      const key = waitKey(step.wait);
      const group = this.#waits.get(key);
      if (group && --group.steps <= 0) this.#waits.delete(key);
    }
    step.wait = reason;
    if (reason) {
      const key = waitKey(reason);
      const group = this.#waits.get(key);
      if (group) {
        group.steps += 1;
        group.reason = reason;
      } else this.#waits.set(key, { reason, steps: 1 });
    }
  }

  /** Steps waiting, by reason: limits first, then the run's slots, then backoffs. */
  waitGroups(): WaitGroup[] {
    const order = { limit: 0, concurrency: 1, backoff: 2 } as const;
    return [...this.#waits.values()].sort((a, b) => order[a.reason.kind] - order[b.reason.kind]);
  }

  /**
   * Listed steps in the API's queue and the best place one holds (undefined before the API
   * gave one). Read at drawing time from the listed jobs only, which the engine keeps to
   * about twice the request slots.
   */
  apiQueue(): { steps: number; front: number | undefined } {
    let steps = 0;
    let front: number | undefined;
    for (const job of this.#active.values()) {
      for (const step of job.steps) {
        if (step.state !== "in_queue") continue;
        steps += 1;
        if (step.queuePosition !== undefined && (front === undefined || step.queuePosition < front))
          front = step.queuePosition;
      }
    }
    return { steps, front };
  }

  /** Time left (estimateRemainingMs), undefined when nothing tells it yet. */
  etaMs(now: number): number | undefined {
    let modelRemaining = 0;
    for (const steps of this.#remainingByModel.values()) modelRemaining += Math.max(0, steps);
    return estimateRemainingMs({
      remainingByModel: this.#remainingByModel,
      typicalMs: this.#typical,
      concurrency: this.header?.concurrency ?? 1,
      limits: this.header?.limits ?? {},
      otherRemaining: Math.max(0, this.remaining - modelRemaining),
      throughputPerMinute: this.throughputPerMinute(now),
    });
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** The first `limit` active jobs, longest active first. */
  activeJobs(limit: number): JobView[] {
    return take(this.#active.values(), limit);
  }

  /** Jobs that failed within FAILURE_LINGER_MS of `now`, oldest first (older ones are dropped). */
  recentFailures(now: number, limit: number): JobView[] {
    for (const [key, job] of this.#recentFailures) {
      if (now - job.listedAt <= FAILURE_LINGER_MS) break;
      this.#recentFailures.delete(key);
    }
    return take(this.#recentFailures.values(), limit);
  }

  /** Steps per minute that ended (succeeded or failed) over the last THROUGHPUT_WINDOW_MS; undefined before the first. */
  throughputPerMinute(now: number): number | undefined {
    const from = now - THROUGHPUT_WINDOW_MS;
    while (
      this.#completionsHead < this.#completions.length &&
      (this.#completions[this.#completionsHead] ?? 0) < from
    ) {
      this.#completionsHead += 1;
    }
    // Compact now and then so the queue does not grow with the run.
    if (this.#completionsHead > 1_024 && this.#completionsHead * 2 > this.#completions.length) {
      this.#completions = this.#completions.slice(this.#completionsHead);
      this.#completionsHead = 0;
    }
    const ended = this.#completions.length - this.#completionsHead;
    if (ended === 0 || !this.header) return undefined;
    // Early in a run the window is the time the run has had, not a full minute.
    const span = Math.min(THROUGHPUT_WINDOW_MS, Math.max(1_000, now - this.header.startedAt));
    return (ended * 60_000) / span;
  }

  /** Steps not yet ended. */
  get remaining(): number {
    return this.counts.queued + this.counts.submitted + this.counts.running;
  }
}

function take<T>(values: IterableIterator<T>, limit: number): T[] {
  const taken: T[] = [];
  if (limit <= 0) return taken;
  for (const value of values) {
    taken.push(value);
    if (taken.length >= limit) break;
  }
  return taken;
}
