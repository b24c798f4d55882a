import type { Command } from "commander";
import { register as registerApply } from "./apply.js";
import { register as registerCancel } from "./cancel.js";
import { register as registerEmulator } from "./emulator.js";
import { register as registerModels } from "./models.js";
import { register as registerPlan } from "./plan.js";
import { register as registerReport } from "./report.js";
import { register as registerRetry } from "./retry.js";
import { register as registerRuns } from "./runs.js";
import { register as registerStatus } from "./status.js";
import { register as registerValidate } from "./validate.js";

/**
 * Every command registers itself here, one module per command (src/cli/commands/NAME.ts
 * exporting `register(program)`), in the order `runflow --help` lists them.
 */
export function registerCommands(program: Command): void {
  // register*(program) calls are added as commands land.
  registerApply(program);
  registerValidate(program);
  registerPlan(program);
  registerStatus(program);
  registerRuns(program);
  registerRetry(program);
  registerCancel(program);
  registerReport(program);
  registerModels(program);
  registerEmulator(program);
}
