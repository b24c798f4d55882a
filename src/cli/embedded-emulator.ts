/**
 * The in-process emulator `apply`, `retry` and `cancel` run against with `--emulator`: no
 * token, nothing billed. One place starts it, so the three commands agree on where it listens.
 */
import { EMBEDDED_EMULATOR_ORIGIN } from "../api/origin.js";
import type { RunningEmulator } from "../emulator/index.js";
import type { ApiTarget } from "../engine/apply.js";
import { DEFAULT_EMULATOR_PORT } from "./commands/emulator.js";

/** How long each request takes on the embedded emulator: long enough to watch, short enough to wait for. */
export const EMBEDDED_EMULATOR_DURATION_MS = 1_000;

/**
 * Starts the embedded emulator on `preferredPort` (the emulator's usual port) when it is
 * free, so media URLs — and with them fingerprints — stay the same from one
 * `apply --emulator` to the next and a second apply reuses what the first did. When the
 * port is taken (a `runflow emulator`, another apply), on any free port: nothing to pick.
 */
export async function startEmbeddedEmulator(
  preferredPort: number = DEFAULT_EMULATOR_PORT,
): Promise<RunningEmulator> {
  // Loaded only here: a real apply (a restart above all) need not load the emulator.
  const { startEmulator, PortInUseError } = await import("../emulator/index.js");
  try {
    return await startEmulator({ duration: EMBEDDED_EMULATOR_DURATION_MS, port: preferredPort });
  } catch (error) {
    if (!(error instanceof PortInUseError)) throw error;
    return startEmulator({ duration: EMBEDDED_EMULATOR_DURATION_MS, port: 0 });
  }
}

/**
 * The API target of a running embedded emulator: any token is accepted there, and its
 * origin is one name whatever the port (api/origin.ts), so runs on it reuse each other.
 */
export function embeddedApi(emulator: RunningEmulator): ApiTarget {
  return { baseUrl: emulator.url, token: "emulator", origin: EMBEDDED_EMULATOR_ORIGIN };
}

/** The note printed when a command runs against the embedded emulator. */
export function embeddedNote(emulator: RunningEmulator): string {
  return `using the local emulator at ${emulator.url}: no token needed, nothing is billed`;
}
