/**
 * Two-stage shutdown (SPEC §5, DESIGN practice 10): the first SIGINT/SIGTERM stops the run
 * gracefully — no new submissions, queued requests cancelled, running ones left recorded for
 * re-attachment, state saved, exit 130 — and a second one exits at once. Handlers are
 * removed in reverse order of installation when the run ends.
 */
import { ExitCode } from "../errors.js";
import type { RunControl } from "./run-control.js";

export interface ShutdownOptions {
  /** Told when the first signal arrives (a line for the user). */
  onFirstSignal?: ((signal: NodeJS.Signals) => void) | undefined;
  /** Ends the process on the second signal; injected for tests. */
  exit?: ((code: number) => void) | undefined;
  signals?: readonly NodeJS.Signals[] | undefined;
}

/** Installs the handlers; the returned function removes them. */
export function handleShutdownSignals(control: RunControl, options: ShutdownOptions = {}): () => void {
  const signals = options.signals ?? (["SIGINT", "SIGTERM"] as const);
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let received = 0;
  const handler = (signal: NodeJS.Signals) => {
    received++;
    if (received === 1) {
      options.onFirstSignal?.(signal);
      control.stop("interrupted");
      return;
    }
    // The user insists: whatever is in flight is recorded already (ids are committed first).
    exit(ExitCode.interrupted);
  };
  const installed: NodeJS.Signals[] = [];
  for (const signal of signals) {
    process.on(signal, handler);
    installed.push(signal);
  }
  return () => {
    for (const signal of installed.reverse()) process.off(signal, handler);
  };
}
