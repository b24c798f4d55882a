/**
 * Test-only markers a `prompt` may carry to make one request behave a chosen way, e.g.
 * `"a cat [emulator:fail=GPU exploded]"`. They are meaningless to the real API (which would
 * just see odd prompt text), so tests stay deterministic without global switches.
 */
import { parseDuration } from "../util/duration.js";
import { BROKEN_OUTPUTS, type BrokenOutput } from "./request-book.js";

export interface PromptMarkers {
  /** `[emulator:fail]` or `[emulator:fail=message]`: the request ends failed with this message. */
  fail?: string;
  /** `[emulator:lost-answer]`: the request is created, then the connection drops unanswered. */
  lostAnswer?: boolean;
  /** `[emulator:output-bytes=N]`: the output video is exactly N bytes. */
  outputBytes?: number;
  /** `[emulator:output-size=WxH]`: the output image is W×H pixels. */
  outputSize?: { width: number; height: number };
  /** `[emulator:duration=2s]`: time in progress, overriding the configured duration. */
  durationMs?: number;
  /** `[emulator:output=missing|empty|text]`: it succeeds with no usable `output` (absent, `{}`, a string). */
  brokenOutput?: BrokenOutput;
  /**
   * `[emulator:hold]` or `[emulator:hold=NAME]`: the request stays in progress until
   * released (`POST /__emulator/release[/NAME]`); the name is "" when not given.
   */
  hold?: string;
}

export interface MarkerParse {
  markers: PromptMarkers;
  /** One message per marker that could not be understood. */
  problems: string[];
}

export const DEFAULT_FAILURE_MESSAGE = "the model failed to generate an output (emulated failure)";

const MARKER = /\[emulator:([a-z-]+)(?:=([^\]]*))?\]/g;
const MAX_SIDE = 16_384;

function positiveInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

export function parseMarkers(prompt: string): MarkerParse {
  const markers: PromptMarkers = {};
  const problems: string[] = [];
  if (!prompt.includes("[emulator:")) return { markers, problems };
  for (const [text, name, value] of prompt.matchAll(MARKER)) {
    switch (name) {
      case "fail":
        markers.fail = value?.trim() || DEFAULT_FAILURE_MESSAGE;
        break;
      case "lost-answer":
        markers.lostAnswer = true;
        break;
      case "hold": {
        const name = value?.trim() ?? "";
        if (!/^[\w.-]*$/.test(name))
          problems.push(
            `${text}: expected a hold name of letters, digits, \`_\`, \`.\` or \`-\`, like [emulator:hold=first]`,
          );
        else markers.hold = name;
        break;
      }
      case "output-bytes": {
        const bytes = positiveInteger(value);
        if (bytes === undefined)
          problems.push(`${text}: expected a whole number of bytes, like [emulator:output-bytes=17000000]`);
        else markers.outputBytes = bytes;
        break;
      }
      case "output-size": {
        const match = /^(\d+)x(\d+)$/.exec(value?.trim() ?? "");
        const width = positiveInteger(match?.[1]);
        const height = positiveInteger(match?.[2]);
        if (width === undefined || height === undefined || width > MAX_SIDE || height > MAX_SIDE) {
          problems.push(
            `${text}: expected WIDTHxHEIGHT in pixels (each 1–${MAX_SIDE}), like [emulator:output-size=640x480]`,
          );
        } else {
          markers.outputSize = { width, height };
        }
        break;
      }
      case "duration": {
        const ms = value === undefined ? undefined : parseDuration(value);
        if (ms === undefined) problems.push(`${text}: expected a duration, like [emulator:duration=2s]`);
        else markers.durationMs = ms;
        break;
      }
      case "output": {
        const broken = BROKEN_OUTPUTS.find((option) => option === value?.trim());
        if (broken === undefined) {
          problems.push(
            `${text}: expected one of ${BROKEN_OUTPUTS.join(", ")}, like [emulator:output=missing]`,
          );
        } else markers.brokenOutput = broken;
        break;
      }
      default:
        problems.push(
          `${text}: unknown emulator marker; known: fail, lost-answer, output-bytes=N, output-size=WxH, duration=D, output=missing|empty|text, hold[=NAME]`,
        );
    }
  }
  return { markers, problems };
}
