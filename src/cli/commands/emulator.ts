/** `runflow emulator`: the local RunComfy-compatible API, until SIGINT/SIGTERM (SPEC §7). */
import { Option, type Command } from "commander";
import { UsageError } from "../../errors.js";
import type { DurationSetting, EmulatorOptions } from "../../emulator/index.js";
import type { ModelPrice } from "../../emulator/config.js";
import { loadModelRegistry } from "../../models/index.js";
import { formatDuration, parseDuration } from "../../util/duration.js";
import { collectRepeatable, commandOutput, globalOptions, type Output } from "../context.js";

export const DEFAULT_EMULATOR_PORT = 8787;
export const DEFAULT_EMULATOR_DURATION_MS = 3_000;

/** The flags as commander hands them over: text, parsed here so errors name the flag. */
export interface EmulatorFlags {
  port?: string;
  host?: string;
  duration?: string;
  queueDelay?: string;
  capacity?: string;
  failRate?: string;
  errorRate?: string;
  rateLimit?: string;
  token?: string;
  /** `--no-log-bodies` sets false. */
  logBodies?: boolean;
  /** `--price MODEL=USD/UNIT[@Ns]`, repeatable. */
  price?: string[];
  costFactor?: string;
  /** `--no-cost` sets false: results carry no cost. */
  cost?: boolean;
}

/** `--price MODEL=0.1/second@8s`, `--price MODEL=0.04/output`, `--price MODEL=none`. */
function priceFlag(value: string): [string, ModelPrice | null] {
  const at = value.lastIndexOf("=");
  const model = value.slice(0, at).trim();
  const text = value.slice(at + 1).trim();
  if (at > 0 && model !== "" && text === "none") return [model, null];
  const match = /^\$?(\d+(?:\.\d+)?)\/(second|output)(?:@(\d+(?:\.\d+)?)s)?$/.exec(text);
  if (at <= 0 || model === "" || !match) {
    throw invalid(
      "--price",
      "`MODEL=USD/second`, `MODEL=USD/second@8s`, `MODEL=USD/output` or `MODEL=none`",
      value,
    );
  }
  const price: ModelPrice = { usd: Number(match[1]), unit: match[2] as ModelPrice["unit"] };
  if (match[3] !== undefined) price.seconds = Number(match[3]);
  return [model, price];
}

function invalid(flag: string, what: string, value: string): UsageError {
  return new UsageError(`Expected \`${flag}\` to be ${what}, got \`${value}\``);
}

function durationFlag(flag: string, value: string): DurationSetting {
  const [first, second, ...rest] = value.split("-");
  const min = first === undefined ? undefined : parseDuration(first);
  const max = second === undefined ? min : parseDuration(second);
  if (min === undefined || max === undefined || rest.length > 0 || min > max) {
    throw invalid(flag, "a duration like `3s`, or a range like `1s-5s`", value);
  }
  return min === max ? min : { min, max };
}

function rateFlag(flag: string, value: string): number {
  const rate = /^\d+(?:\.\d+)?$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(rate >= 0 && rate <= 1)) throw invalid(flag, "a number between 0 and 1", value);
  return rate;
}

function integerFlag(flag: string, value: string, min: number, max: number): number {
  const number = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(number >= min && number <= max)) throw invalid(flag, `an integer from ${min} to ${max}`, value);
  return number;
}

function rateLimitFlag(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(value.trim());
  const perSecond = match ? Number(match[1]) : Number.NaN;
  if (!(perSecond > 0)) throw invalid("--rate-limit", "a number of requests per second like `50/s`", value);
  return perSecond;
}

/** The emulator's start options from the command line; throws UsageError naming the bad flag. */
export function emulatorOptionsFromFlags(flags: EmulatorFlags): EmulatorOptions {
  const options: EmulatorOptions = {
    port: flags.port === undefined ? DEFAULT_EMULATOR_PORT : integerFlag("--port", flags.port, 0, 65_535),
    duration:
      flags.duration === undefined
        ? DEFAULT_EMULATOR_DURATION_MS
        : durationFlag("--duration", flags.duration),
    logBodies: flags.logBodies ?? true,
  };
  if (flags.host !== undefined) options.host = flags.host;
  if (flags.queueDelay !== undefined) options.queueDelay = durationFlag("--queue-delay", flags.queueDelay);
  if (flags.capacity !== undefined)
    options.capacity = integerFlag("--capacity", flags.capacity, 1, 1_000_000);
  if (flags.failRate !== undefined) options.failRate = rateFlag("--fail-rate", flags.failRate);
  if (flags.errorRate !== undefined) options.errorRate = rateFlag("--error-rate", flags.errorRate);
  if (flags.rateLimit !== undefined) options.rateLimit = rateLimitFlag(flags.rateLimit);
  if (flags.price !== undefined) options.prices = Object.fromEntries(flags.price.map(priceFlag));
  if (flags.costFactor !== undefined) {
    const factor = /^\d+(?:\.\d+)?$/.test(flags.costFactor.trim()) ? Number(flags.costFactor) : Number.NaN;
    if (!(factor >= 0)) throw invalid("--cost-factor", "a number ≥ 0 like `2`", flags.costFactor);
    options.costFactor = factor;
  }
  if (flags.cost === false) options.reportCost = false;
  if (flags.token !== undefined) {
    if (flags.token.trim() === "" || /\s/.test(flags.token)) {
      throw new UsageError("Expected `--token` to be a non-empty token without spaces");
    }
    options.token = flags.token;
  }
  return options;
}

function describeDuration(setting: DurationSetting | undefined): string {
  if (setting === undefined) return formatDuration(0);
  return typeof setting === "number"
    ? formatDuration(setting)
    : `${formatDuration(setting.min)}–${formatDuration(setting.max)}`;
}

export interface RunEmulatorContext {
  output: Output;
  json: boolean;
  quiet: boolean;
  /** Resolves when the emulator should stop (a signal, in the CLI). */
  stopped: Promise<unknown>;
}

/** Starts the emulator, says where it is and how to use it, and serves until `stopped`. */
export async function runEmulator(options: EmulatorOptions, context: RunEmulatorContext): Promise<void> {
  // Loaded when used: every other command starts without it.
  const { startEmulator } = await import("../../emulator/index.js");
  const emulator = await startEmulator(options);
  const { output } = context;
  if (context.json) {
    output.stdout(JSON.stringify({ url: emulator.url, port: emulator.port }));
  } else {
    output.stdout(`runflow emulator listening on ${emulator.url}`);
    if (!context.quiet) {
      // The token itself is never printed, even a test token: it may be a real one.
      const token = options.token === undefined ? "anything" : "<the --token value>";
      output.stdout(
        [
          "Point runflow at it:",
          `  RUNCOMFY_BASE_URL=${emulator.url} RUNCOMFY_API_TOKEN=${token} runflow apply <file>`,
          `Requests spend ${describeDuration(options.duration)} in progress` +
            (options.failRate ? `; ${options.failRate * 100}% end failed` : "") +
            (options.errorRate ? `; ${options.errorRate * 100}% of calls answer 5xx` : "") +
            (options.rateLimit ? `; over ${options.rateLimit} calls/s answer 429` : "") +
            ".",
          `Inspect: ${emulator.url}/__emulator/state, ${emulator.url}/__emulator/requests`,
          "Press Ctrl-C to stop.",
        ].join("\n"),
      );
    }
  }
  try {
    await context.stopped;
  } finally {
    await emulator.close();
  }
  if (!context.json && !context.quiet) output.stderr("emulator stopped");
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve(signal);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .option("--port <port>", `port to listen on; 0 picks a free one (default: ${DEFAULT_EMULATOR_PORT})`)
    .option("--host <host>", "loopback address to listen on (default: 127.0.0.1)")
    .option(
      "--duration <duration>",
      "time a request spends in progress: `3s`, or a range `1s-5s` (default: 3s)",
    )
    .option(
      "--queue-delay <duration>",
      "time a request spends in the queue first: `1s` or `1s-5s` (default: 0)",
    )
    .option("--capacity <n>", "requests in progress at once; the rest wait in the queue (default: unlimited)")
    .option("--fail-rate <rate>", "probability from 0 to 1 that a request ends failed (default: 0)")
    .option("--error-rate <rate>", "probability from 0 to 1 that an API call answers 5xx (default: 0)")
    .option(
      "--rate-limit <n/s>",
      "API calls per second before 429 with Retry-After, e.g. `50/s` (default: none)",
    )
    .option("--token <token>", "accept only this API token (default: any non-empty token)")
    .option(
      "--price <model=usd/unit>",
      "a model's price: `MODEL=0.1/second` (billed for 5 s of output, or `@8s`), `MODEL=0.04/output`, or `MODEL=none` (repeatable; default: video $0.10/second, image $0.04/output)",
      collectRepeatable,
    )
    .option("--cost-factor <x>", "charge this multiple of what the price says, e.g. `2` (default: 1)")
    .addOption(new Option("--no-cost", "report no cost on results (`include_cost` is ignored)"))
    .addOption(
      new Option("--no-log-bodies", "keep only the last 1000 calls, without bodies, in the request log"),
    )
    .action(async (flags: EmulatorFlags, command: Command) => {
      const globals = globalOptions(command);
      const options = emulatorOptionsFromFlags(flags);
      options.registry = loadModelRegistry({ dirs: globals.models });
      await runEmulator(options, {
        output: commandOutput(command),
        json: globals.json,
        quiet: globals.quiet,
        stopped: untilSignal(),
      });
    });
}
