/**
 * The last guard before text reaches the database file: a secret that slipped into a step's
 * stdout (a command that printed its environment), an error message or the stored options
 * is replaced before it is written. Callers never mean to store a secret; this makes sure.
 */
export const REDACTED = "[redacted]";

/** Shorter values would redact ordinary words; real API tokens are far longer. */
const MIN_SECRET_LENGTH = 8;

/** The environment variables that may hold the API token (SPEC §3). */
const TOKEN_VARIABLES = ["RUNCOMFY_API_TOKEN", "YOUR_API_TOKEN"] as const;

export function tokensFromEnvironment(env: NodeJS.ProcessEnv): string[] {
  return TOKEN_VARIABLES.map((name) => env[name]?.trim() ?? "").filter((value) => value.length > 0);
}

export type Redactor = (text: string) => string;

export function makeRedactor(secrets: readonly string[]): Redactor {
  const usable = [...new Set(secrets)].filter((s) => s.length >= MIN_SECRET_LENGTH);
  if (usable.length === 0) return (text) => text;
  return (text) => {
    let clean = text;
    for (const secret of usable) if (clean.includes(secret)) clean = clean.split(secret).join(REDACTED);
    return clean;
  };
}
