import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError, Option } from "commander";
import { ExitCode, formatLocation, isRunflowError, WorkflowInvalidError } from "../errors.js";
import { explainSqliteError } from "../store/errors.js";
import { collectRepeatable, globalOptions, processOutput, setProgramOutput, type Output } from "./context.js";
import { registerCommands } from "./commands/index.js";

function packageVersion(): string {
  const url = new URL("../../package.json", import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
}

/**
 * Whether errors are to be written as JSON: `--json` among the words before `--`. Read from
 * the words themselves, since an error may come before commander has parsed the options.
 */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).includes("--json");
}

export function buildProgram(
  output: Output = processOutput,
  options: { jsonErrors?: boolean } = {},
): Command {
  const jsonErrors = options.jsonErrors ?? false;
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
    .showHelpAfterError(jsonErrors ? false : "(run with --help for usage)")
    .exitOverride()
    // Configured before the commands are added: subcommands inherit it, so in-process runs
    // capture commander's own messages too.
    .configureOutput({
      writeOut: (text) => output.stdout(text),
      // On stderr commander writes only the help it shows when no command is given (its
      // errors go through outputError): with --json, that is an error like any other.
      writeErr: (text) =>
        output.stderr(
          jsonErrors
            ? errorJson({
                code: "usage",
                message: "no command given",
                hint: "`runflow --help` lists the commands",
                exitCode: ExitCode.invalid,
              })
            : text,
        ),
      outputError: (text, write) => {
        if (!jsonErrors) write(text);
        else
          output.stderr(
            errorJson({
              code: "usage",
              message: text.trim().replace(/^error: /, ""),
              exitCode: ExitCode.invalid,
            }),
          );
      },
    });
  setProgramOutput(program, output);
  registerCommands(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code; never exits. */
export async function runCli(argv: readonly string[], output: Output = processOutput): Promise<number> {
  const json = wantsJson(argv);
  const program = buildProgram(output, { jsonErrors: json });
  // Commands report a non-zero outcome through process.exitCode; start each run clean so one
  // in-process run cannot leak its code into the next.
  const previous = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv], { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (error) {
    return reportError(error, program, output, json);
  } finally {
    process.exitCode = previous;
  }
}

/**
 * An error as one JSON object on one line (`--json`): scripts read stderr as they read
 * stdout. Written on stderr for every command, `apply --json` too, whose stdout holds only
 * the run's events (an error ends the process; `run_finished` is never an error).
 */
function errorJson(error: {
  code: string;
  message: string;
  exitCode: number;
  hint?: string | undefined;
  error?: unknown;
  stack?: string | undefined;
}): string {
  const diagnostics = error.error instanceof WorkflowInvalidError ? error.error.diagnostics : [];
  const first = diagnostics.find((d) => d.location !== undefined)?.location;
  // A workflow's problems are listed one by one; the message only says how many.
  const [only] = diagnostics.length === 1 ? diagnostics : [];
  const message =
    only?.message ?? (diagnostics.length > 1 ? `${diagnostics.length} problems` : error.message);
  return JSON.stringify({
    event: "error",
    code: error.code,
    message,
    location: first ? formatLocation(first) : undefined,
    hint: error.hint ?? only?.hint,
    problems:
      diagnostics.length > 0
        ? diagnostics.map((d) => ({
            message: d.message,
            location: d.location ? formatLocation(d.location) : undefined,
            path: d.path,
            hint: d.hint,
          }))
        : undefined,
    exit_code: error.exitCode,
    stack: error.stack,
  });
}

function reportError(error: unknown, program: Command, output: Output, json: boolean): number {
  if (error instanceof CommanderError) {
    // Help and version are "errors" to commander; they are successes to the user.
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return ExitCode.ok;
    // Help asked for (`runflow help`) exits 0; help shown because nothing was asked (`runflow`
    // alone) is commander's exit code 1: nothing was done, a bad invocation (2).
    if (error.code === "commander.help") return error.exitCode === 0 ? ExitCode.ok : ExitCode.invalid;
    return ExitCode.invalid;
  }
  const verbose = process.argv.includes("--verbose") || globalOptions(program).verbose;
  const stack = verbose && error instanceof Error ? error.stack : undefined;
  if (isRunflowError(error)) {
    if (json) {
      output.stderr(errorJson({ ...error, message: error.message, error, stack, exitCode: error.exitCode }));
      return error.exitCode;
    }
    output.stderr(`error: ${error.message}`);
    if (error.hint) output.stderr(`  hint: ${error.hint}`);
    if (stack) output.stderr(stack);
    // The error it explains (an SQLite error, say) holds the stack of where it happened.
    if (verbose && error.cause instanceof Error && error.cause.stack) {
      output.stderr(`caused by: ${error.cause.stack}`);
    }
    return error.exitCode;
  }
  // An SQLite error that escaped the store (a page found damaged mid-read, a database
  // another process holds): the CLI uses one database, so it can say which file it is.
  const explained = explainSqliteError(path.resolve(globalOptions(program).state), error);
  if (isRunflowError(explained)) return reportError(explained, program, output, json);
  const message = error instanceof Error ? error.message : String(error);
  const hint = stack ? undefined : "run again with --verbose for details, and report it if it persists";
  if (json) {
    output.stderr(errorJson({ code: "internal", message, hint, stack, exitCode: ExitCode.stepsFailed }));
    return ExitCode.stepsFailed;
  }
  output.stderr(`error: ${message}`);
  if (stack) output.stderr(stack);
  else output.stderr(`  hint: ${hint}`);
  return ExitCode.stepsFailed;
}
