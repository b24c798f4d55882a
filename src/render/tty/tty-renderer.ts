/**
 * The live view on a terminal (SPEC §6), drawn by listr2. The engine drives the run; this
 * only listens: events fold into a ProgressModel, and a timer at most `fps` times a second
 * turns the model into a frame (however many events arrived in between) and hands it to
 * listr2 as the title of its one task. listr2's DefaultRenderer does the drawing (log-update:
 * erase the previous frame, write the new one, keep the cursor hidden, hold back stray
 * writes to stdout/stderr until the view ends). Why one task and not a task per job:
 * docs/decisions-tty.md.
 */
import {
  DefaultRenderer,
  Listr,
  ListrDefaultRendererLogLevels,
  ListrLogger,
  ProcessOutput,
  type ListrTaskWrapper,
} from "listr2";
import type { RunEvent } from "../../engine/events.js";
import { renderFrame } from "./frame.js";
import { ProgressModel } from "./progress-model.js";
import { colorEnabled } from "./text.js";

/** The part of the engine's EventBus the view needs. */
export interface EventSource {
  subscribe(listener: (event: RunEvent) => void): () => void;
}

/** A terminal-like stream: where the view draws, and how big it is. */
export type TerminalStream = NodeJS.WritableStream & {
  isTTY?: boolean | undefined;
  rows?: number | undefined;
  columns?: number | undefined;
};

export interface TtyRendererOptions {
  /** Where to draw. Default: process.stdout. */
  stream?: TerminalStream | undefined;
  /** Held back (and printed after the view) while it draws. Default: process.stderr. */
  errorStream?: TerminalStream | undefined;
  /** Terminal height; default: the stream's, read at every frame so a resize is followed. */
  rows?: number | undefined;
  /** Terminal width; as `rows`. */
  columns?: number | undefined;
  /** Default: Date.now. */
  now?: (() => number) | undefined;
  /** Default: from NO_COLOR / FORCE_COLOR and whether `stream` is a terminal. */
  color?: boolean | undefined;
  /** Most frames per second (default 10). */
  fps?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export interface TtyRenderer {
  /** Draws the current state now instead of at the next tick. */
  flush(): void;
  /** Stops listening and drawing, leaving the last frame on screen. Idempotent. */
  stop(): Promise<void>;
  /** Settles when the view is on screen: from then on `flush()` draws at once. */
  readonly ready: Promise<void>;
  /**
   * Settles when the view has ended (after `run_finished`, or `stop()`) and the terminal is
   * the caller's again: print the summary after this.
   */
  readonly done: Promise<void>;
  readonly model: ProgressModel;
}

const DEFAULT_ROWS = 24;
const DEFAULT_COLUMNS = 80;
/** listr2 puts its status icon and a space before the first line and indents the rest by two. */
const LISTR_PREFIX_COLUMNS = 2;
const SHOW_CURSOR = "\u001b[?25h";
const NO_BREAK_SPACE = "\u00a0";

type ViewTask = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof DefaultRenderer>;

export function createTtyRenderer(events: EventSource, options: TtyRendererOptions = {}): TtyRenderer {
  const stream = options.stream ?? process.stdout;
  const errorStream = options.errorStream ?? process.stderr;
  const now = options.now ?? Date.now;
  const color = options.color ?? colorEnabled(options.env ?? process.env, stream);
  const frameMs = Math.max(1, Math.round(1_000 / (options.fps ?? 10)));
  const model = new ProgressModel();

  let task: ViewTask | undefined;
  let lastTitle = "";
  let stopped = false;
  let endTask: (outcome: { failed: boolean }) => void = () => {};
  const taskEnded = new Promise<void>((resolve, reject) => {
    // A run that did not succeed ends the task as failed, so listr2 marks it ✖ instead of ✔;
    // the error's message is the last frame, which listr2 then shows in place of the title.
    endTask = ({ failed }) => (failed ? reject(new Error(lastTitle)) : resolve());
  });
  // Ended before listr2 started the task (stopped at once): not an unhandled rejection.
  taskEnded.catch(() => undefined);
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  const draw = (): void => {
    if (!task) return;
    // log-update keeps one line for the cursor below the frame, and listr2 its prefix.
    const rows = (options.rows ?? stream.rows ?? DEFAULT_ROWS) - 1;
    const columns = (options.columns ?? stream.columns ?? DEFAULT_COLUMNS) - LISTR_PREFIX_COLUMNS;
    const title = renderFrame(model, { rows, columns }, now(), { color })
      .join("\n")
      // log-update re-measures a line's width once per space-separated word (Intl.Segmenter
      // each time), which made drawing cost twice as much; with no-break spaces each line is
      // one word and is measured once. Terminals show them as spaces.
      .replaceAll(" ", NO_BREAK_SPACE);
    if (title !== lastTitle) {
      lastTitle = title;
      task.title = title;
    }
  };

  const processOutput = new ProcessOutput(stream as NodeJS.WriteStream, errorStream as NodeJS.WriteStream, {
    leaveEmptyLine: false,
  });
  const plain = (text?: string): string => text ?? "";
  const rendererOptions = {
    // No spinner timer: frames come only from our coalescing timer.
    lazy: true,
    formatOutput: "truncate" as const,
    removeEmptyLines: false,
    logger: new ListrLogger({ processOutput }),
    ...(color
      ? {}
      : {
          color: {
            [ListrDefaultRendererLogLevels.PENDING]: plain,
            [ListrDefaultRendererLogLevels.COMPLETED]: plain,
          },
        }),
  };
  const listr = new Listr(
    [
      {
        title: "starting…",
        task: (_context: unknown, wrapper: ViewTask) => {
          task = wrapper;
          draw();
          markReady();
          return taskEnded;
        },
      },
    ],
    {
      // The caller chose this view because the output is a terminal; listr2 must not
      // second-guess it from process.stdout (it falls back when that is not a TTY, so the
      // fallback is the same renderer with the same options).
      renderer: DefaultRenderer,
      rendererOptions,
      fallbackRenderer: DefaultRenderer,
      fallbackRendererOptions: rendererOptions,
      // The engine owns SIGINT (stop submitting, save state, exit 130).
      registerSignalListeners: false,
      exitOnError: false,
    },
  );

  // If the process exits while the view is up (a second Ctrl-C), give the cursor back.
  // While the view is up, stream.write is held back by listr2; toStdout writes through.
  const restoreCursor = (): void => {
    processOutput.toStdout(SHOW_CURSOR, false);
  };
  process.once("exit", restoreCursor);

  const done = listr.run().then(
    () => undefined,
    () => undefined,
  );
  // A view that never got to draw (stopped early) is not waited for.
  void done.then(markReady);
  const timer = setInterval(draw, frameMs);
  timer.unref();
  const unsubscribe = events.subscribe((event) => {
    model.apply(event);
    if (event.event === "run_finished") void stop();
  });

  async function stop(): Promise<void> {
    if (!stopped) {
      stopped = true;
      unsubscribe();
      clearInterval(timer);
      draw();
      endTask({ failed: model.finished !== undefined && model.finished.status !== "succeeded" });
    }
    await done;
    process.removeListener("exit", restoreCursor);
  }

  return { flush: draw, stop, ready, done, model };
}
