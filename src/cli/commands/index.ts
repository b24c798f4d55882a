import type { Command } from "commander";
import { register as registerEmulator } from "./emulator.js";
import { register as registerModels } from "./models.js";
import { register as registerPlan } from "./plan.js";
import { register as registerValidate } from "./validate.js";

/**
 * Every command registers itself here, one module per command (src/cli/commands/NAME.ts
 * exporting `register(program)`), in the order `runflow --help` lists them.
 */
export function registerCommands(program: Command): void {
  // register*(program) calls are added as commands land.
  registerValidate(program);
  registerPlan(program);
  registerModels(program);
  registerEmulator(program);
}
