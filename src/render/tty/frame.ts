/**
 * One screen of the live view, as lines (pure: the model, the terminal size and the time in,
 * text out). Never more lines than `size.rows` nor wider than `size.columns`, however many
 * jobs the run has.
 *
 *   teasers · run r-20250101 · 3m05s elapsed · 42.0 steps/min · ETA 12m10s
 *   9,870 queued · 8 submitted · 16 running · 96 succeeded · 4 reused · 6 failed
 *   2 waiting for the limit of runwayml/runway-aleph/video-to-video (2 at once) · 1 backing off
 *   teaser/0007  animate: succeeded · restyle: in_progress 0:42
 *   teaser/0011  animate: in_queue #3
 *   … and 12 more active
 */
import { formatUsd } from "../../cost/money.js";
import { formatDuration } from "../../util/duration.js";
import { NOTICE_LINGER_MS, type DisplayGroup, type JobView, type ProgressModel } from "./progress-model.js";
import { stepLabel, waitPhrase } from "./step-label.js";
import { formatClock } from "./clock-format.js";
import { formatCount, groupCount } from "../vocabulary.js";
import { firstLine, fitSegments, paint, printable, type Segment, type Style } from "./text.js";

export interface FrameSize {
  rows: number;
  columns: number;
}

export interface FrameOptions {
  /** ANSI colours (default false: tests compare plain text). */
  color?: boolean | undefined;
}

const GROUPS: readonly [DisplayGroup, Style | undefined][] = [
  ["queued", "dim"],
  ["submitted", "magenta"],
  ["running", "yellow"],
  ["done", "green"],
  ["reused", "blue"],
  ["failed", "red"],
];

const SEPARATOR: Segment = { text: " · ", style: "dim" };

function joinSegments(parts: readonly Segment[][]): Segment[] {
  return parts.flatMap((part, index) => (index === 0 ? part : [SEPARATOR, ...part]));
}

function titleLine(model: ProgressModel, now: number): Segment[] {
  const header = model.header;
  if (!header) return [{ text: "starting…", style: "dim" }];
  const parts: Segment[][] = [
    [{ text: printable(header.workflow), style: "bold" }],
    [{ text: `${header.kind === "retry" ? "retry" : "run"} ${printable(header.runId)}` }],
  ];
  const finished = model.finished;
  if (finished) {
    const style: Style = finished.status === "succeeded" ? "green" : "red";
    parts.push([{ text: `${finished.status} after ${formatDuration(finished.elapsedMs)}`, style }]);
    return joinSegments(parts);
  }
  parts.push([{ text: `${formatDuration(Math.max(0, now - header.startedAt))} elapsed` }]);
  // Spend against the budget (SPEC §9): what the API reported so far.
  if (header.maxCostMicros !== undefined) {
    parts.push([{ text: `${formatUsd(model.spentMicros)} of ${formatUsd(header.maxCostMicros)} spent` }]);
  } else if (model.spentMicros > 0) parts.push([{ text: `${formatUsd(model.spentMicros)} spent` }]);
  const rate = model.throughputPerMinute(now);
  parts.push([{ text: rate === undefined ? "— steps/min" : `${rate.toFixed(1)} steps/min` }]);
  const eta = model.remaining === 0 ? 0 : model.etaMs(now);
  parts.push([{ text: eta === undefined ? "ETA —" : `ETA ${formatDuration(eta)}` }]);
  return joinSegments(parts);
}

/**
 * Why steps are not moving, when some are not: the API failing, a `limits` entry or the
 * run's slots full, backoffs. Empty when nothing waits for a reason worth saying.
 */
function waitsLine(model: ProgressModel, now: number): Segment[] {
  const parts: Segment[][] = [];
  const down = model.apiUnreachable;
  if (down) {
    parts.push([
      {
        text: `API unreachable since ${clockTime(down.since)} (${formatClock(now - down.since)}): ${printable(firstLine(down.error))}`,
        style: "red",
      },
    ]);
  }
  for (const { reason, steps } of model.waitGroups()) {
    parts.push([{ text: `${formatCount(steps)} ${waitPhrase(reason)}`, style: "yellow" }]);
  }
  // Said only when something else waits too: alone, the API's queue is the normal case.
  if (parts.length > 0 && model.counts.submitted > 0) {
    const queue = model.apiQueue();
    if (queue.steps > 0) {
      const front = queue.front === undefined ? "" : `, the first at #${queue.front}`;
      parts.push([{ text: `${formatCount(queue.steps)} in the API's queue${front}`, style: "cyan" }]);
    }
  }
  return joinSegments(parts);
}

/** `12:00:03`: a time of day in UTC, as the plain log writes it. */
function clockTime(at: number): string {
  return new Date(at).toISOString().slice(11, 19);
}

function countsLine(model: ProgressModel): Segment[] {
  return joinSegments(
    GROUPS.map(([group, style]) => {
      const n = model.counts[group];
      return [{ text: groupCount(group, n), style: n > 0 ? style : "dim" }];
    }),
  );
}

function jobLine(job: JobView, now: number): Segment[] {
  const segments: Segment[] = [{ text: printable(job.key), style: "bold" }, { text: "  " }];
  job.steps.forEach((step, index) => {
    if (index > 0) segments.push(SEPARATOR);
    segments.push({ text: `${printable(step.step)}: ` }, stepLabel(step, now));
  });
  return segments;
}

export function renderFrame(
  model: ProgressModel,
  size: FrameSize,
  now: number,
  options: FrameOptions = {},
): string[] {
  const rows = Math.max(1, Math.floor(size.rows));
  const columns = Math.max(1, Math.floor(size.columns));
  const lines: Segment[][] = [titleLine(model, now)];
  if (rows >= 2) lines.push(countsLine(model));
  const waits = model.finished ? [] : waitsLine(model, now);
  if (rows >= 4 && waits.length > 0) lines.push(waits);

  // The end of the run shows the totals only: the summary that follows lists the failures.
  if (!model.finished) {
    const notice =
      model.notice && now - model.notice.at <= NOTICE_LINGER_MS && rows - lines.length >= 2
        ? model.notice
        : undefined;
    const room = rows - lines.length - (notice ? 1 : 0);
    lines.push(...jobLines(model, room, now));
    if (notice) {
      lines.push([
        {
          text: `${notice.level === "warn" ? "warning" : "note"}: ${printable(notice.message)}`,
          style: notice.level === "warn" ? "yellow" : "dim",
        },
      ]);
    }
  }
  return lines.map((line) => paint(fitSegments(line, columns), options.color === true));
}

/**
 * Active jobs, longest active first, then jobs that just failed — these keep a few rows
 * even when the active ones would fill the screen, so a failure is seen as it happens.
 */
function jobLines(model: ProgressModel, room: number, now: number): Segment[][] {
  if (room <= 0) return [];
  const active = model.activeCount;
  const failures = model.recentFailures(now, room);
  const failureRows =
    active === 0 ? failures.length : Math.min(failures.length, Math.max(1, Math.floor(room / 4)));
  let activeRows = Math.min(active, room - failureRows);
  const hidden = active - activeRows;
  // The "more" line takes a row of its own, from the active jobs.
  const moreRow = hidden > 0 ? 1 : 0;
  if (moreRow && activeRows + failureRows + moreRow > room) activeRows = Math.max(0, activeRows - 1);
  const lines = model.activeJobs(activeRows).map((job) => jobLine(job, now));
  if (active - activeRows > 0)
    lines.push([{ text: `… and ${formatCount(active - activeRows)} more active`, style: "dim" }]);
  const failureRoom = room - lines.length;
  for (const job of failures.slice(0, Math.max(0, failureRoom))) lines.push(jobLine(job, now));
  return lines;
}
