/**
 * Runs the built CLI (`node dist/bin/runflow.js …`, the bundle package.json names as `runflow`) as a separate process, the way a user or
 * cron runs it: end-to-end tests see real exit codes and real stdout/stderr.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI_ENTRY = path.join(REPO_ROOT, "dist", "bin", "runflow.js");

export interface SpawnCliOptions {
  /** Working directory of the process (default: the repository root). */
  cwd?: string;
  /** Variables added to (or, when undefined, removed from) the inherited environment. */
  env?: Record<string, string | undefined>;
  /** The process is killed after this long; the result then says `timedOut`. */
  timeoutMs?: number;
}

export interface CliResult {
  /** undefined when the process was killed (timeout, signal). */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Throws a message that says what to do when the CLI has not been built. */
export function assertCliBuilt(): void {
  if (!existsSync(CLI_ENTRY)) {
    throw new Error(
      `${CLI_ENTRY} is missing: run \`npm run build\` first (npm test builds it before vitest)`,
    );
  }
}

export async function spawnCli(args: readonly string[], options: SpawnCliOptions = {}): Promise<CliResult> {
  assertCliBuilt();
  const result = await execa(process.execPath, [CLI_ENTRY, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    // Plain, colourless output whatever the terminal the tests run in.
    env: { NO_COLOR: "1", FORCE_COLOR: undefined, ...options.env },
    stdin: "ignore",
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
    forceKillAfterDelay: 1_000,
  });
  return {
    exitCode: result.exitCode,
    stdout: result.stdout,
    stderr: result.stderr,
    timedOut: result.timedOut,
  };
}
