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
