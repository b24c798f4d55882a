/**
 * The real ProcessRunner: execa with an argument vector, never a shell, in runflow's own
 * environment without the API token, the step's variables over it. An adapter of the
 * composition root: the engine starts no process and reads no environment itself.
 */
import type { execa as Execa } from "execa";
import { TOKEN_VARIABLES } from "../api/env.js";
import type { ProcessOutcome, ProcessRequest } from "../engine/deps.js";

// Loaded on the first run step: execa takes about 70 ms to load, and most commands (and
// workflows without run steps) never start a process.
let execaModule: Promise<{ execa: typeof Execa }> | undefined;

/** A program writing more than this to stdout or stderr is stopped: runflow keeps stdout in its database. */
const MAX_BUFFER_BYTES = 16 * 1024 * 1024;

/** runflow's environment without the API token, with the step's own variables over it. */
function processEnvironment(extra: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !TOKEN_VARIABLES.includes(name as (typeof TOKEN_VARIABLES)[number]))
      env[name] = value;
  }
  return { ...env, ...extra };
}

export async function runProcess(request: ProcessRequest): Promise<ProcessOutcome> {
  const [program, ...args] = request.argv;
  if (program === undefined || program === "") {
    return {
      exitCode: undefined,
      stdout: "",
      stderr: "",
      timedOut: false,
      cancelled: false,
      failure: "run: the argument vector is empty",
    };
  }
  const { execa } = await (execaModule ??= import("execa"));
  const result = await execa(program, args, {
    cwd: request.cwd,
    env: processEnvironment(request.env),
    extendEnv: false,
    shell: false,
    stdin: "ignore",
    timeout: request.timeoutMs > 0 ? request.timeoutMs : undefined,
    cancelSignal: request.signal,
    forceKillAfterDelay: 5_000,
    maxBuffer: MAX_BUFFER_BYTES,
    reject: false,
    stripFinalNewline: true,
  });
  const outcome: ProcessOutcome = {
    exitCode: result.exitCode,
    stdout: typeof result.stdout === "string" ? result.stdout : "",
    stderr: typeof result.stderr === "string" ? result.stderr : "",
    timedOut: result.timedOut,
    cancelled: result.isCanceled,
  };
  if (result.failed && result.exitCode === undefined && !result.timedOut && !result.isCanceled) {
    const code = (result.cause as NodeJS.ErrnoException | undefined)?.code;
    outcome.failure =
      code === "ENOENT"
        ? `${program}: command not found (is it installed and on PATH?)`
        : `${program}: ${result.shortMessage}`;
  }
  return outcome;
}
