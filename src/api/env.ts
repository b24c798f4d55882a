/**
 * The client as the environment configures it (SPEC §3): RUNCOMFY_API_TOKEN (RunComfy's docs
 * call it YOUR_API_TOKEN, accepted as a fallback) and RUNCOMFY_BASE_URL.
 */
import { UsageError } from "../errors.js";
import { RunComfyClient, type RunComfyClientOptions } from "./client.js";

export const TOKEN_VARIABLES = ["RUNCOMFY_API_TOKEN", "YOUR_API_TOKEN"] as const;
export const BASE_URL_VARIABLE = "RUNCOMFY_BASE_URL";

type Env = Record<string, string | undefined>;

/** The API token, or undefined when neither variable holds one. */
export function readApiToken(env: Env = process.env): string | undefined {
  for (const name of TOKEN_VARIABLES) {
    const value = env[name]?.trim();
    if (value) return value;
  }
  return undefined;
}

export interface ClientFromEnvOptions extends Omit<RunComfyClientOptions, "token" | "baseUrl"> {
  env?: Env;
}

export function createClientFromEnv(options: ClientFromEnvOptions = {}): RunComfyClient {
  const { env = process.env, ...clientOptions } = options;
  const token = readApiToken(env);
  if (token === undefined) {
    throw new UsageError("no RunComfy API token: RUNCOMFY_API_TOKEN is not set", {
      hint: "export RUNCOMFY_API_TOKEN=<your API key> (from your RunComfy account's API settings)",
    });
  }
  const baseUrl = env[BASE_URL_VARIABLE]?.trim();
  return new RunComfyClient({ ...clientOptions, token, ...(baseUrl ? { baseUrl } : {}) });
}
