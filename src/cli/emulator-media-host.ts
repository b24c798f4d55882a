/**
 * The media host `--emulator` points an example workflow at: the var its stills' host is
 * read from, and what `plan --emulator` assumes for it. Shared by apply and plan.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { parseVarOverrides } from "../workflow/var-overrides.js";
import { DEFAULT_EMULATOR_PORT } from "./commands/emulator.js";

/** The var an example workflow reads its stills' host from; `--emulator` points it at the emulator. */
export const MEDIA_HOST_VAR = "image_host";

/** Whether the workflow file declares `vars.NAME` (a cheap look: the full load comes later and reports problems). */
export function declaresVar(file: string, name: string): boolean {
  try {
    const data = parse(readFileSync(file, "utf8")) as { vars?: unknown } | null;
    const vars = data?.vars;
    return typeof vars === "object" && vars !== null && Object.hasOwn(vars, name);
  } catch {
    return false;
  }
}

/**
 * The media host `plan --emulator` (and `apply --emulator --dry-run`) assumes: the emulator's
 * usual port, where `apply --emulator` listens when it is free.
 */
export function planEmulatorVars(
  file: string,
  varFlags: readonly string[] | undefined,
): Record<string, string> {
  if (Object.hasOwn(parseVarOverrides(varFlags ? [...varFlags] : undefined), MEDIA_HOST_VAR)) return {};
  if (!declaresVar(file, MEDIA_HOST_VAR)) return {};
  return { [MEDIA_HOST_VAR]: `http://127.0.0.1:${DEFAULT_EMULATOR_PORT}` };
}
