/**
 * What the live view knows about a run, folded from the event stream alone. Each event costs
 * O(1) (10,000 jobs send tens of thousands of events); drawing reads only what fits on the
 * screen. Timestamps come from the events, so the model is exact under test.
 */
import type { RunEvent, RunFinishedEvent, RunStartedEvent, StepEvent } from "../../engine/events.js";
import { DISPLAY_GROUP, type StepState } from "../../engine/states.js";

export type DisplayGroup = (typeof DISPLAY_GROUP)[StepState];

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
}

export class ProgressModel {
  header: RunHeader | undefined;
  finished: RunFinishedEvent | undefined;
  notice: { level: "info" | "warn"; message: string; at: number } | undefined;
  readonly counts: Record<DisplayGroup, number> = {
    queued: 0,
    submitted: 0,
    running: 0,
    done: 0,
    reused: 0,
    failed: 0,
  };
  /** Events applied so far (the bench reports cost per event). */
  events = 0;

  readonly #jobs = new Map<string, JobView>();
  /** Jobs with a step in flight, oldest first. */
  readonly #active = new Map<string, JobView>();
  /** Jobs that just ended with a failure, oldest first. */
  readonly #recentFailures = new Map<string, JobView>();
  /** Times of recent worked ends; a queue read from `#completionsHead`. */
  #completions: number[] = [];
  #completionsHead = 0;

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
        };
        // Every step starts pending: queued until an event says otherwise.
        this.counts.queued = event.steps;
        break;
      case "step":
        this.#applyStep(event);
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
      };
      job.steps.push(step);
    }
    const from = step.state;
    // Counted from the state the view holds, not the event's `previous`: the two agree on a
    // complete stream, and the header stays consistent even if one were to differ.
    this.counts[DISPLAY_GROUP[from]] -= 1;
    this.counts[DISPLAY_GROUP[event.state]] += 1;
    const changed = from !== event.state;
    if (changed && WORKED_ENDS.has(event.state)) this.#completions.push(event.at);

    if (changed) step.since = event.at;
    step.state = event.state;
    step.attempt = event.attempt;
    step.queuePosition = event.state === "in_queue" ? event.queuePosition : undefined;
    // An error stays with the step while it waits for its next attempt; success clears it.
    if (event.error !== undefined) step.error = event.error;
    else if (event.state === "succeeded" || event.state === "reused") step.error = undefined;

    const wasInFlight = IN_FLIGHT.has(from);
    const isInFlight = IN_FLIGHT.has(event.state);
    if (wasInFlight !== isInFlight) job.inFlight += isInFlight ? 1 : -1;
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
