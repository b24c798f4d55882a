/** How one step reads in the live view: `in_queue #3`, `in_progress 0:42`, `succeeded`, `failed: …`. */
import type { WaitReason } from "../../engine/events.js";
import type { StepView } from "./progress-model.js";
import { formatClock } from "./clock-format.js";
import { firstLine, printable, type Segment, type Style } from "./text.js";
import { stateLabel } from "../vocabulary.js";

const STYLE: Partial<Record<StepView["state"], Style>> = {
  submitting: "magenta",
  in_queue: "cyan",
  in_progress: "yellow",
  running: "yellow",
  downloading: "yellow",
  succeeded: "green",
  reused: "blue",
  failed: "red",
  timed_out: "red",
  cancelled: "red",
  unknown: "red",
  blocked: "dim",
  waiting: "dim",
  pending: "dim",
};

export function stepLabel(step: StepView, now: number): Segment {
  const style = STYLE[step.state];
  const text = labelText(step, now);
  // A later attempt says so while it is under way; the first is the normal case.
  const retry = step.attempt > 1 && !isEnded(step.state) ? ` (attempt ${step.attempt})` : "";
  return { text: `${text}${retry}`, style };
}

function isEnded(state: StepView["state"]): boolean {
  return ["succeeded", "reused", "failed", "timed_out", "cancelled", "unknown", "blocked", "held"].includes(
    state,
  );
}

/** What one wait reason says: `waiting for the limit of MODEL (2 at once)`, `backing off`. */
export function waitPhrase(reason: WaitReason): string {
  switch (reason.kind) {
    case "limit":
      return `waiting for the limit of ${printable(reason.model)} (${reason.limit} at once)`;
    case "concurrency":
      return `waiting for a request slot (concurrency ${reason.concurrency})`;
    case "backoff":
      return "backing off";
  }
}

/** What a step that waits for a reason says after its state. */
function waitDetail(wait: WaitReason, now: number): string {
  if (wait.kind !== "backoff") return `: ${waitPhrase(wait)}`;
  const why = printable(firstLine(wait.why));
  const what = wait.before === "poll" ? "polling again" : "next attempt";
  return ` · ${what} in ${formatClock(Math.max(0, wait.until - now) + 999)} after: ${why}`;
}

function labelText(step: StepView, now: number): string {
  const wait = step.wait;
  // `waiting for the limit of MODEL`, not `waiting: waiting for …`.
  if (wait && wait.kind !== "backoff" && step.state === "waiting") return waitPhrase(wait);
  const text = stateText(step, now);
  return wait ? `${text}${waitDetail(wait, now)}` : text;
}

function stateText(step: StepView, now: number): string {
  const error = step.error === undefined ? "" : printable(firstLine(step.error));
  switch (step.state) {
    case "in_queue":
      return step.queuePosition === undefined ? "in_queue" : `in_queue #${step.queuePosition}`;
    case "in_progress":
    case "running":
      return `${step.state} ${formatClock(now - step.since)}`;
    case "failed":
      return error === "" ? "failed" : `failed: ${error}`;
    case "timed_out":
    case "unknown":
    case "cancelled":
      return error === "" ? stateLabel(step.state) : `${stateLabel(step.state)}: ${error}`;
    default:
      return stateLabel(step.state);
  }
}
