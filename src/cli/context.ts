import type { Command } from "commander";
import { DEFAULT_STATE_PATH } from "../engine/state-path.js";
import { UsageError } from "../errors.js";
import { isPostgresLocation } from "../store/location.js";

/** Options every command accepts (SPEC §2, "Common options"). */
export interface GlobalOptions {
  state: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /** Extra folders of model schemas (`--models DIR`, repeatable). */
  models: string[];
}

export { DEFAULT_STATE_PATH };

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
  /**
   * The terminal stdout is, if it is one: `apply` and `retry` draw their live view there.
   * Undefined for pipes, files and in-process runs, which get plain lines.
   */
  terminal?: NodeJS.WriteStream | undefined;
}

export const processOutput: Output = {
  stdout: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  stderr: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  get terminal() {
    return process.stdout.isTTY ? process.stdout : undefined;
  },
};

const programOutputs = new WeakMap<Command, Output>();

/** Remembers where `program` (the root command) writes; see commandOutput. */
export function setProgramOutput(program: Command, output: Output): void {
  programOutputs.set(program, output);
}

/**
 * The Output a command writes through: the one runCli was given for the root program, so
 * in-process runs (tests) capture everything a command prints.
 */
export function commandOutput(command: Command): Output {
  let root = command;
  while (root.parent) root = root.parent;
  return programOutputs.get(root) ?? processOutput;
}

/** Commander option parser for repeatable options (`--var A=1 --var B=2`). */
export function collectRepeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--queue URL` of apply, retry and worker: where a PostgreSQL state's queues are (SPEC §10). */
export const QUEUE_OPTION = [
  "--queue <url>",
  "where the queues of a postgres:// state are, when not in its database: redis://HOST:PORT (rediss:// for TLS) or postgres://… (RUNFLOW_QUEUE)",
] as const;

/**
 * The environment a use case runs in when `--queue` is given: this process's, with the flag
 * over RUNFLOW_QUEUE (what the cluster reads); undefined (this process's) without it.
 */
export function environmentWithQueue(
  queue: string | undefined,
  globals: GlobalOptions,
): NodeJS.ProcessEnv | undefined {
  if (queue === undefined) return undefined;
  if (!isPostgresLocation(globals.state)) {
    throw new UsageError(
      `--queue is for a shared state: --state ${globals.state} is a SQLite file, whose steps run in this process`,
      { hint: "give --state postgres://USER@HOST:PORT/DB (or RUNFLOW_STATE), or leave out --queue" },
    );
  }
  return { ...process.env, RUNFLOW_QUEUE: queue };
}
