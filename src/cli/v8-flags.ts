/**
 * V8's settings for a command that runs a batch: its heap's, and WebAssembly's compiler.
 *
 * The heap. A batch of 100,000 steps runs for hours and allocates steadily (every poll is a
 * request) while what stays live is small: V8's default lets the heap grow to about four
 * times the live size before a full collection, which put a 100,000-step apply near 780 MB. Growing by 10% (and 8 MB semi-spaces) keeps it near
 * 300 MB for about 10% more CPU than V8's default (docs/decisions.md, "Engine performance").
 *
 * WebAssembly: Liftoff only (V8's baseline compiler). undici parses HTTP with llhttp, a
 * WebAssembly module; V8 compiles it with Liftoff and, once it has parsed a few answers,
 * again with TurboFan on a background thread (≈ 60 ms of CPU). Node waits for that
 * compilation before it exits: a `plan` or `validate --preflight`, or an `apply` whose
 * every step is reused, ended 60–80 ms later than it needed to. Parsing headers of JSON
 * answers gains nothing measurable from TurboFan (the throughput benchmark's steps/s and CPU
 * per step are the same either way; docs/decisions.md, "Short commands that make requests").
 *
 * A command that only reads, prints and exits (`status`, `runs`, `models`, `--version`,
 * `--help`: `shortLived` in the registry) keeps V8's own settings: the flags cost its start
 * ≈ 5 ms of garbage collection, and its heap stays small anyway (docs/decisions.md,
 * "Start-up"). The bundle's entry (scripts/cli-entry.cjs) applies the same rule before
 * anything is compiled, from the values the build copies there (scripts/bundle-cli.js):
 * V8 refuses a code cache made under other flags, so both must agree. Node's own code cache
 * for its modules is made under V8's defaults: each module loaded after a flag is set is
 * compiled from its source instead, so the entry first loads those the command's last run
 * needed before its first submission (its pack names them; docs/decisions.md, "Start-up").
 */
import { COMMANDS } from "./commands/index.js";

export const BATCH_V8_FLAGS: readonly string[] = [
  "--heap-growing-percent=10",
  "--max-semi-space-size=8",
  "--liftoff-only",
];

/** The names of the short-lived commands. */
export const SHORT_LIVED_COMMANDS: readonly string[] = COMMANDS.filter((entry) => entry.shortLived).map(
  (entry) => entry.name,
);

/**
 * The flags for a command line (without node and script): the batch's, unless its command
 * is short-lived or it names none. Its command is the first word that names one, as the
 * entry reads it (`runflow --json status` → status).
 */
export function v8FlagsFor(argv: readonly string[]): readonly string[] {
  const command = argv.find((word) => COMMANDS.some((entry) => entry.name === word));
  return command === undefined || SHORT_LIVED_COMMANDS.includes(command) ? [] : BATCH_V8_FLAGS;
}
