import type { Command } from "commander";

/** Options every command accepts (SPEC §2, "Common options"). */
export interface GlobalOptions {
  state: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /** Extra folders of model schemas (`--models DIR`, repeatable). */
  models: string[];
}

export const DEFAULT_STATE_PATH = "state/runflow.db";

export function globalOptions(command: Command): GlobalOptions {
  const all = command.optsWithGlobals<Partial<GlobalOptions>>();
  return {
    state: all.state ?? process.env.RUNFLOW_STATE ?? DEFAULT_STATE_PATH,
    json: all.json ?? false,
    quiet: all.quiet ?? false,
    verbose: all.verbose ?? false,
    models: all.models ?? [],
  };
}

/** Where a command writes. Injected so the CLI can be driven in-process by tests. */
export interface Output {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processOutput: Output = {
  stdout: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  stderr: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
};

/**
 * The Output a command writes through: the one runCli configured on the root program, so
 * in-process runs (tests) capture everything a command prints.
 */
export function commandOutput(command: Command): Output {
  let root = command;
  while (root.parent) root = root.parent;
  const configured = root.configureOutput();
  return {
    stdout: (text) => (configured.writeOut ? configured.writeOut(text) : processOutput.stdout(text)),
    stderr: (text) => (configured.writeErr ? configured.writeErr(text) : processOutput.stderr(text)),
  };
}

/** Commander option parser for repeatable options (`--var A=1 --var B=2`). */
export function collectRepeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
