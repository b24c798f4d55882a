import { UsageError } from "../errors.js";
import { setOwn } from "../template/data.js";

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * `--var NAME=VALUE` (repeatable) → overrides of the workflow's `vars`. Strict: a missing
 * `=`, a bad name or the same name twice is a usage error, not a guess. The value is
 * everything after the first `=`, taken as text.
 */
export function parseVarOverrides(options: readonly string[] | undefined): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const option of options ?? []) {
    const equals = option.indexOf("=");
    const name = equals < 0 ? option : option.slice(0, equals);
    if (equals < 0) {
      throw new UsageError(`--var ${option}: expected NAME=VALUE`, {
        hint: `e.g. --var ${name || "style"}=noir`,
      });
    }
    if (!VAR_NAME.test(name)) {
      throw new UsageError(
        `--var ${option}: ${JSON.stringify(name)} is not a var name (letters, digits, \`_\` and \`-\`, not starting with a digit or \`-\`)`,
      );
    }
    if (Object.hasOwn(vars, name))
      throw new UsageError(`--var ${name} is given twice`, { hint: "pass each var once" });
    setOwn(vars, name, option.slice(equals + 1));
  }
  return vars;
}
