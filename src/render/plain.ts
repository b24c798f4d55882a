/**
 * Plain progress lines for logs, cron and pipes (SPEC §6): one timestamped line per state
 * change, no colour, no cursor movement. A subscriber of the event stream, nothing more.
 */
import type { ApiUnreachableEvent, RunEvent, StepEvent } from "../engine/events.js";
import { formatDuration } from "../util/duration.js";
import { scopePhrase, stateLabel } from "./vocabulary.js";

/** `2025-06-01T12:00:03Z`: sortable, unambiguous across time zones, no noise below the second. */
export function timestamp(at: number): string {
  return `${new Date(at).toISOString().slice(0, 19)}Z`;
}

/** What follows `ADDRESS STATE`: ` #3`, ` attempt 2`, ` request ID`, ` from run R`, then `: error`. */
function stepDetail(event: StepEvent): string {
  const parts: string[] = [];
  if (event.state === "in_queue" && event.queuePosition !== undefined) parts.push(`#${event.queuePosition}`);
  if (event.attempt > 1 && (event.state === "submitting" || event.state === "running"))
    parts.push(`attempt ${event.attempt}`);
  // The request id once, on the first state after the submission (or the re-attachment).
  const firstRemote =
    event.previous === "submitting" || event.previous === "waiting" || event.previous === "pending";
  if (event.requestId && firstRemote && event.state !== "reused") parts.push(`request ${event.requestId}`);
  if (event.reusedFrom) parts.push(`from run ${event.reusedFrom}`);
  const detail = parts.length > 0 ? ` ${parts.join(" ")}` : "";
  if (!event.error) return detail;
  return `${detail}: ${event.state === "waiting" ? `retrying after ${event.error}` : event.error}`;
}

/** Said once per outage, in the plain log and on stderr under --quiet. */
export function apiUnreachableMessage(event: ApiUnreachableEvent): string {
  return `API unreachable since ${timestamp(event.since)}: ${event.error}; its calls are retried until it answers`;
}

/** The line for one event, or undefined for events this view does not show (the summary covers the end). */
export function plainLine(event: RunEvent): string | undefined {
  const time = timestamp(event.at);
  switch (event.event) {
    case "run_started":
      return `${time} ${event.kind} ${event.runId}: workflow ${event.workflow} (${event.file}), ${scopePhrase({ steps: event.steps, instances: event.jobs })}, concurrency ${event.concurrency}`;
    case "step":
      // A step leaving `pending` for `waiting` is not news; a retry's `waiting` is.
      if (event.state === "waiting" && !event.error) return undefined;
      return `${time} ${event.address} ${stateLabel(event.state)}${stepDetail(event)}`;
    case "notice":
      return `${time} ${event.level === "warn" ? "warning: " : ""}${event.message}`;
    case "api_unreachable":
      return `${time} warning: ${apiUnreachableMessage(event)}`;
    case "api_recovered":
      return `${time} API recovered: it answers again after ${formatDuration(event.at - event.since)} unreachable`;
    // Why a step waits changes with every poll; this log keeps to what changed for good.
    case "step_wait":
    case "typical_duration":
    case "run_finished":
      return undefined;
  }
}

/** Subscribes plain lines to `write` (one line per call, without the newline). */
export function plainRenderer(write: (line: string) => void): (event: RunEvent) => void {
  return (event) => {
    const line = plainLine(event);
    if (line !== undefined) write(line);
  };
}
