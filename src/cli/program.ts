import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError, Option } from "commander";
import { ExitCode, isRunflowError } from "../errors.js";
import { explainSqliteError } from "../store/errors.js";
import { collectRepeatable, globalOptions, processOutput, setProgramOutput, type Output } from "./context.js";
import { registerCommands } from "./commands/index.js";

function packageVersion(): string {
  const url = new URL("../../package.json", import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
}

export function buildProgram(output: Output = processOutput): Command {
  const program = new Command("runflow")
    .description("Run batches of generative-media jobs on the RunComfy Model API from YAML workflows.")
    .version(packageVersion(), "-V, --version", "print the version")
    .addOption(
      new Option("--state <path>", "state database (default: state/runflow.db)").env("RUNFLOW_STATE"),
    )
    .option("--json", "machine-readable output (NDJSON events for apply, one JSON document otherwise)")
    .option("-q, --quiet", "print only the summary and errors")
    .option("--verbose", "more detail, and stack traces on errors")
    .option("--models <dir>", "extra folder of model schemas (repeatable)", collectRepeatable)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    // Configured before the commands are added: subcommands inherit it, so in-process runs
    // capture commander's own messages too.
    .configureOutput({
      writeOut: (text) => output.stdout(text),
      writeErr: (text) => output.stderr(text),
    });
  setProgramOutput(program, output);
  registerCommands(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code; never exits. */
export async function runCli(argv: readonly string[], output: Output = processOutput): Promise<number> {
  const program = buildProgram(output);
  // Commands report a non-zero outcome through process.exitCode; start each run clean so one
  // in-process run cannot leak its code into the next.
  const previous = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv], { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (error) {
    return reportError(error, program, output);
  } finally {
    process.exitCode = previous;
  }
}

function reportError(error: unknown, program: Command, output: Output): number {
  if (error instanceof CommanderError) {
    // Help and version are "errors" to commander; they are successes to the user.
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return ExitCode.ok;
    if (error.code === "commander.help") return ExitCode.ok;
    return ExitCode.invalid;
  }
  const verbose = process.argv.includes("--verbose") || globalOptions(program).verbose;
  if (isRunflowError(error)) {
    output.stderr(`error: ${error.message}`);
    if (error.hint) output.stderr(`  hint: ${error.hint}`);
    if (verbose && error.stack) output.stderr(error.stack);
    // The error it explains (an SQLite error, say) holds the stack of where it happened.
    if (verbose && error.cause instanceof Error && error.cause.stack) {
      output.stderr(`caused by: ${error.cause.stack}`);
    }
    return error.exitCode;
  }
  // An SQLite error that escaped the store (a page found damaged mid-read, a database
  // another process holds): the CLI uses one database, so it can say which file it is.
  const explained = explainSqliteError(path.resolve(globalOptions(program).state), error);
  if (isRunflowError(explained)) return reportError(explained, program, output);
  const message = error instanceof Error ? error.message : String(error);
  output.stderr(`error: ${message}`);
  if (verbose && error instanceof Error && error.stack) output.stderr(error.stack);
  else output.stderr("  hint: run again with --verbose for details, and report it if it persists");
  return ExitCode.stepsFailed;
}
