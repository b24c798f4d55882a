/**
 * Reads a step's stored input for a human: the prompts, the media it was given (source
 * image, source video) and the remaining parameters. Model steps store the request body;
 * run steps store their command (`{argv, cwd, env}` or a bare argument vector).
 */
import { isHttpUrl } from "../models/media-kind.js";

export interface PromptInput {
  name: string;
  text: string;
}

export interface MediaInput {
  name: string;
  /** Position in a list field (0-based); undefined for a single URL. */
  index: number | undefined;
  url: string;
}

export interface ParameterInput {
  name: string;
  /** The value as text (JSON for lists and objects). */
  value: string;
}

export interface StepInput {
  prompts: PromptInput[];
  media: MediaInput[];
  parameters: ParameterInput[];
  /** Run steps: the argument vector. The environment is never shown: it may hold secrets. */
  command: string[] | undefined;
  cwd: string | undefined;
}

/** A parameter longer than this is cut: the report is for reading, the state database keeps it all. */
const MAX_PARAMETER_LENGTH = 500;

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function asText(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > MAX_PARAMETER_LENGTH ? `${text.slice(0, MAX_PARAMETER_LENGTH)}…` : text;
}

export function emptyStepInput(): StepInput {
  return { prompts: [], media: [], parameters: [], command: undefined, cwd: undefined };
}

export function readStepInput(kind: "model" | "run", input: unknown): StepInput {
  const result = emptyStepInput();
  if (input === undefined || input === null) return result;
  if (kind === "run") {
    if (isStringArray(input)) result.command = input;
    else if (typeof input === "object" && !Array.isArray(input)) {
      const { argv, cwd } = input as { argv?: unknown; cwd?: unknown };
      if (isStringArray(argv)) result.command = argv;
      if (typeof cwd === "string") result.cwd = cwd;
    }
    return result;
  }
  if (typeof input !== "object" || Array.isArray(input)) {
    result.parameters.push({ name: "input", value: asText(input) });
    return result;
  }
  for (const [name, value] of Object.entries(input as Record<string, unknown>)) {
    if (typeof value === "string" && /prompt/i.test(name)) {
      result.prompts.push({ name, text: value });
    } else if (typeof value === "string" && isHttpUrl(value)) {
      result.media.push({ name, index: undefined, url: value });
    } else if (isStringArray(value) && value.length > 0 && value.every(isHttpUrl)) {
      value.forEach((url, index) => result.media.push({ name, index, url }));
    } else if (value !== undefined) {
      result.parameters.push({ name, value: asText(value) });
    }
  }
  return result;
}
