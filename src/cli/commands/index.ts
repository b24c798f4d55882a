import type { Command } from "commander";

/**
 * Every command registers itself here, one module per command (src/cli/commands/NAME.ts
 * exporting `register(program)`), in the order `runflow --help` lists them.
 */
export function registerCommands(_program: Command): void {
  // register*(program) calls are added as commands land.
}
