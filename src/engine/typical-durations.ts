/**
 * How long each model's requests take, learned as the run goes: an exponentially weighted
 * moving average of the server-measured durations (`finished_at − created_at`), and of how
 * far they fall from it (their spread, as TCP learns a round trip's variation, RFC 6298).
 * The poll schedule waits until just after the average, so most requests cost one status
 * poll and one result; one not done then is looked at again at the pace of the spread.
 */
import type { PollGuide } from "../api/client.js";
import type { TypicalDuration } from "../store/types.js";

/** Weight of the newest deviation in the spread (RFC 6298's β). */
const SPREAD_WEIGHT = 0.25;
/** A change of a tenth is worth telling; less moves no ETA. */
const REPORT_STEP = 0.1;
/** Ends the waits planned without a duration; nobody reads it (a reason of our own: no stack built). */
const LEARNED = new Error("a duration of this model was learned");

/** A request's view of its model's durations, for the client's poll schedule; `done` when its watch ends. */
export interface RequestPollGuide extends PollGuide {
  done(): void;
  /**
   * This request was seen finished `elapsedMs` after its submission. From the model's scout,
   * while no duration is known, that is the duration until its result says it exactly: the
   * model's other requests in flight look now, not one result's round trip later.
   */
  finished(elapsedMs: number): void;
}

export class TypicalDurations {
  readonly #byModel = new Map<string, number>();
  /** Per model: the average distance of its durations from #byModel's, once two are known. */
  readonly #spreadByModel = new Map<string, number>();
  /** Weight of the newest observation: recent requests matter more, one outlier does not dominate. */
  readonly #alpha: number;
  /** Hears a model's duration when it is first known, then when it moved by REPORT_STEP or more. */
  readonly #onChange: (model: string, typicalMs: number) => void;
  readonly #reported = new Map<string, number>();
  /** Per model still unknown: ended when its first duration is learned or its scout's watch ends. */
  readonly #changes = new Map<string, AbortController>();
  /** Per model still unknown: the one request looking on the guessing schedule. */
  readonly #scouts = new Map<string, object>();
  /** Models whose duration is only what their scout's last look saw, until its result says it exactly. */
  readonly #provisional = new Set<string>();

  constructor(alpha = 0.3, onChange: (model: string, typicalMs: number) => void = () => {}) {
    this.#alpha = alpha;
    this.#onChange = onChange;
  }

  observe(model: string, durationMs: number | undefined): void {
    if (durationMs === undefined || !Number.isFinite(durationMs) || durationMs < 0) {
      // A result without the server's times: the scout's look is all this run will know,
      // kept as the duration (its waits need not listen for a better one any more).
      this.#provisional.delete(model);
      return;
    }
    // The scout's look is replaced by what the server measured, not averaged with it.
    const previous = this.#provisional.delete(model) ? undefined : this.#byModel.get(model);
    const next = previous === undefined ? durationMs : previous + this.#alpha * (durationMs - previous);
    this.#byModel.set(model, next);
    if (previous !== undefined) this.#learnSpread(model, Math.abs(durationMs - previous));
    // The requests of the model in flight plan their next poll again, at this duration.
    if (previous === undefined) this.#tell(model);
    // Not every request's end: a view needs to hear a real change, not 100,000 small ones.
    const reported = this.#reported.get(model);
    if (reported === undefined || Math.abs(next - reported) >= REPORT_STEP * Math.max(reported, 1)) {
      this.#reported.set(model, next);
      this.#onChange(model, Math.round(next));
    }
  }

  /** Starts the model at what earlier runs saw (a no-op once this run has seen one finish). */
  seed(model: string, typical: TypicalDuration | undefined): void {
    if (this.#byModel.has(model) || typical === undefined) return;
    this.observe(model, typical.ms);
    if (typical.spreadMs !== undefined && typical.spreadMs >= 0)
      this.#spreadByModel.set(model, typical.spreadMs);
  }

  /**
   * The poll guide of one request of `model`. While the model's duration is unknown, one
   * request at a time is its scout and looks on the guessing schedule; the others wait
   * until its end teaches them the duration (or the scout's watch ends otherwise and
   * another takes over), so a first round of N requests costs one guess, not N.
   */
  guide(model: string): RequestPollGuide {
    const self = {};
    return {
      typicalMs: () => this.get(model),
      spreadMs: () => this.spread(model),
      provisional: () => this.#provisional.has(model),
      guessing: () => {
        const scout = this.#scouts.get(model);
        if (scout !== undefined) return scout === self;
        this.#scouts.set(model, self);
        return true;
      },
      changed: () => {
        let change = this.#changes.get(model);
        if (!change) this.#changes.set(model, (change = new AbortController()));
        return change.signal;
      },
      finished: (elapsedMs) => {
        if (this.#scouts.get(model) !== self || this.#byModel.has(model)) return;
        if (!Number.isFinite(elapsedMs) || elapsedMs < 0) return;
        this.#byModel.set(model, elapsedMs);
        this.#provisional.add(model);
        this.#tell(model);
      },
      done: () => {
        if (this.#scouts.get(model) !== self) return;
        this.#scouts.delete(model);
        // Another request looks now, unless this one's end taught the duration.
        this.#tell(model);
      },
    };
  }

  /** The deviation is measured from the average before this duration moved it (RFC 6298). */
  #learnSpread(model: string, deviationMs: number): void {
    const spread = this.#spreadByModel.get(model);
    this.#spreadByModel.set(
      model,
      spread === undefined ? deviationMs : spread + SPREAD_WEIGHT * (deviationMs - spread),
    );
  }

  #tell(model: string): void {
    const change = this.#changes.get(model);
    if (!change) return;
    this.#changes.delete(model);
    change.abort(LEARNED);
  }

  /** How far the model's durations usually fall from get()'s; undefined until two are known. */
  spread(model: string): number | undefined {
    const value = this.#spreadByModel.get(model);
    return value === undefined ? undefined : Math.round(value);
  }

  /** undefined until one request of the model has finished (or was seeded). */
  get(model: string): number | undefined {
    const value = this.#byModel.get(model);
    return value === undefined ? undefined : Math.round(value);
  }
}
