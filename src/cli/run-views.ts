/**
 * What `apply` and `retry` share around a run: the views that subscribe to its event stream
 * (live view on a terminal, plain lines otherwise, NDJSON with --json, errors only with
 * --quiet), the summary at the end, and the two-stage signal handling.
 */
import type { ApplyOutcome } from "../engine/apply.js";
import type { EventBus, RunEvent } from "../engine/events.js";
import type { RunControl } from "../engine/run-control.js";
import { handleShutdownSignals } from "../engine/shutdown.js";
import { UsageError } from "../errors.js";
import { parseUsd } from "../cost/money.js";
import { ndjsonRenderer } from "../render/ndjson.js";
import { apiUnreachableMessage, plainLine, plainRenderer } from "../render/plain.js";
import { SummaryCollector, summaryLines } from "../render/summary.js";
import type { TtyRenderer } from "../render/tty/index.js";
import type { GlobalOptions, Output } from "./context.js";
import { displayPath, retryCommand } from "./printed-commands.js";

/** `--concurrency` as a number; a usage error for anything but an integer ≥ 1. */
export function parseConcurrency(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(number) || number < 1) {
    throw new UsageError(`Expected \`--concurrency\` to be an integer ≥ 1, got \`${value}\``);
  }
  return number;
}

/** `--max-cost 12.50` as micro-dollars; a usage error (exit 2) for anything but a positive amount. */
export function parseMaxCost(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const micros = parseUsd(text);
  if (micros === undefined || micros <= 0) {
    throw new UsageError(
      `Expected \`--max-cost\` to be an amount of USD above 0 like \`12.50\`, got \`${text}\``,
    );
  }
  return micros;
}

/** The views of one run, as subscribed to its event stream. */
export interface RunViews {
  summary: SummaryCollector;
  /** The live view, once the run has started, when stdout is a terminal and neither --json nor --quiet was given. */
  readonly live: TtyRenderer | undefined;
  /** Ends the live view (if any) and gives the terminal back; call before printing the summary. */
  end(): Promise<void>;
}

/**
 * Subscribes the views the output and the options call for, and the summary collector:
 * `--json` NDJSON, `--quiet` only warnings (on stderr), a terminal the live view, anything
 * else (a pipe, a file, cron's mail) plain timestamped lines. The live view's module (and
 * listr2 with it) is loaded only for a terminal: a run in a pipe or under cron starts
 * without it.
 */
export async function subscribeViews(
  events: EventBus,
  globals: GlobalOptions,
  output: Output,
): Promise<RunViews> {
  const summary = new SummaryCollector();
  events.subscribe(summary.listener);
  let live: TtyRenderer | undefined;
  if (globals.json) events.subscribe(ndjsonRenderer((line) => output.stdout(line)));
  else if (globals.quiet)
    events.subscribe((event: RunEvent) => {
      if (event.event === "notice" && event.level === "warn") output.stderr(`warning: ${event.message}`);
      if (event.event === "api_unreachable") output.stderr(`warning: ${apiUnreachableMessage(event)}`);
    });
  else if (output.terminal) {
    const stream = output.terminal;
    const { createTtyRenderer } = await import("../render/tty/index.js");
    // Drawn from the run's start: a workflow refused before it (exit 2, 3) leaves no empty frame.
    const unsubscribe = events.subscribe((event) => {
      // Before it (waiting for another apply's lock, taking over a dead one's): plain lines.
      if (event.event === "notice") output.stderr(plainLine(event) ?? event.message);
      if (event.event !== "run_started") return;
      unsubscribe();
      live = createTtyRenderer(
        {
          subscribe: (listener) => {
            listener(event);
            return events.subscribe(listener);
          },
        },
        { stream },
      );
    });
  } else events.subscribe(plainRenderer((line) => output.stdout(line)));
  return {
    summary,
    get live() {
      return live;
    },
    end: async () => live?.stop(),
  };
}

/** Prints the end-of-run summary (not with --json: stdout holds only events then). */
export function printSummary(
  summary: SummaryCollector,
  outcome: Pick<ApplyOutcome, "outputsRoot" | "runId">,
  globals: GlobalOptions,
  output: Output,
  context: {
    resumeCommand: string;
    downloads: boolean;
    emulator?: boolean | undefined;
    /** `--queue` as given, repeated in the printed retry command. */
    queue?: string | undefined;
  },
): void {
  if (globals.json) return;
  const lines = summaryLines(summary, {
    outputs: outcome.outputsRoot === undefined ? undefined : displayPath(outcome.outputsRoot),
    retryCommand: retryCommand(outcome.runId, globals, context),
    resumeCommand: context.resumeCommand,
    downloads: context.downloads,
  });
  if (lines.length > 0) output.stdout(lines.join("\n"));
}

/**
 * Runs a run under its views and the two-stage signal handling (first SIGINT/SIGTERM stops
 * submitting, a second exits at once); the live view is ended, and the handlers removed,
 * when it settles, whether it succeeded or threw.
 */
export async function runWithViews<T>(
  views: RunViews,
  control: RunControl,
  output: Output,
  fn: () => Promise<T>,
): Promise<T> {
  const release = handleShutdownSignals(control, {
    // Every view says what stopping means (the engine's notice); stderr says only what is
    // the user's to know: a second signal does not wait.
    onFirstSignal: (signal) => {
      if (!views.live) output.stderr(`${signal} received: stopping (a second ${signal} exits at once)`);
    },
  });
  try {
    return await fn();
  } finally {
    release();
    await views.end();
  }
}
