/**
 * The commands of `runflow`, in the order `runflow --help` lists them: each by its name, its
 * description and its usage words, and the module that defines the rest of it
 * (src/cli/commands/NAME.ts, exporting `define(command)`: arguments, options, action).
 *
 * A command's module is imported only when that command is the one asked for, just before
 * commander parses its words: `runflow --version`, `--help`, `status` or `runs` never load
 * what `apply` needs (the HTTP client, the emulator, the live view, the schema validator).
 * Starting node costs about 50 ms; loading all of that took five times as long (issue 14).
 * test/cli-lazy-load.test.ts checks both: what each command loads, and that the usage
 * words here are the ones each module defines.
 */
import { Help, type Command } from "commander";

export interface CommandEntry {
  name: string;
  description: string;
  /** What `runflow --help` shows after the name: `[options]` and the arguments. */
  usage: string;
  load: () => Promise<{ define: (command: Command) => void }>;
  /**
   * It reads, prints and exits, holding little whatever the run's size: it runs with V8's
   * own settings, not the batch's (src/cli/v8-flags.ts), whose heap flags cost a start ≈ 5 ms.
   */
  shortLived?: true;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "apply",
    description:
      "validate, plan and run a workflow to completion; resume what is unfinished, reuse what already succeeded",
    usage: "[options] <file>",
    load: () => import("./apply.js"),
  },
  {
    name: "validate",
    description:
      "check a workflow file (syntax, structure, references, model inputs) without submitting anything",
    usage: "[options] <file>",
    load: () => import("./validate.js"),
  },
  {
    name: "plan",
    description:
      "print what apply would do: which steps would be reused, re-attached, submitted or held, the request bodies, and what it will cost (per model, with the basis of each figure)",
    usage: "[options] <file>",
    load: () => import("./plan.js"),
  },
  {
    name: "status",
    description:
      "state of a run (default: the latest): its steps counted by state, failed steps with their errors, outputs",
    usage: "[run]",
    load: () => import("./status.js"),
    shortLived: true,
  },
  {
    name: "runs",
    description: "history of runs, newest first",
    usage: "[options]",
    load: () => import("./runs.js"),
    shortLived: true,
  },
  {
    name: "retry",
    description:
      "re-run the failed, timed-out and cancelled steps of a run (default: the latest) and the steps that depend on them",
    usage: "[options] [run]",
    load: () => import("./retry.js"),
  },
  {
    name: "cancel",
    description: "stop a run (default: the latest): no new submissions, its queued requests cancelled",
    usage: "[options] [run]",
    load: () => import("./cancel.js"),
  },
  {
    name: "report",
    description: "write a report of a run: an HTML gallery of inputs and outputs (default), Markdown or JSON",
    usage: "[options] [run]",
    load: () => import("./report.js"),
  },
  {
    name: "models",
    description:
      "list the models runflow knows a schema for, with their prices (show one, or pull schemas from the API's catalog)",
    usage: "",
    load: () => import("./models.js"),
    shortLived: true,
  },
  {
    name: "worker",
    description:
      "execute steps of any run kept in a PostgreSQL state, until SIGINT/SIGTERM (several machines share one batch and one account's limits)",
    usage: "[options]",
    load: () => import("./worker.js"),
  },
  {
    name: "emulator",
    description:
      "start the local RunComfy-compatible API emulator (for tests and trying runflow without an account)",
    usage: "[options]",
    load: () => import("./emulator.js"),
  },
];

/**
 * Adds every command to `program` by name and description, and defines the one commander
 * dispatches to (its module imported then). Parsing must be `parseAsync`: the hook awaits.
 */
export function registerCommands(program: Command): void {
  const entries = new Map<Command, CommandEntry>();
  for (const entry of COMMANDS)
    entries.set(program.command(entry.name).description(entry.description), entry);

  // Before a module is loaded its command has no arguments or options for commander to
  // list: `runflow --help` shows the usage words declared above instead.
  const standard = new Help();
  program.configureHelp({
    subcommandTerm: (command) => {
      const entry = entries.get(command);
      if (entry === undefined) return standard.subcommandTerm(command);
      return entry.usage === "" ? entry.name : `${entry.name} ${entry.usage}`;
    },
  });

  const defined = new Set<Command>();
  const define = async (command: Command, entry: CommandEntry) => {
    if (defined.has(command)) return;
    defined.add(command);
    (await entry.load()).define(command);
  };
  program.hook("preSubcommand", async (_program, command) => {
    const entry = entries.get(command);
    if (entry !== undefined) await define(command, entry);
  });

  // `runflow help NAME` shows NAME's help: commander's own help command shows it without
  // dispatching (no hook runs), so before the module has added the options; this one
  // loads the module first.
  program.helpCommand(false);
  program
    .command("help")
    .argument("[command]")
    .description("display help for command")
    .helpOption(false)
    .action(async (name: string | undefined) => {
      const found = [...entries].find(([command]) => command.name() === name);
      if (found === undefined) return program.help({ error: name !== undefined });
      await define(...found);
      found[0].help();
    });
}
