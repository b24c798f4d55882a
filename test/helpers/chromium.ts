/**
 * Headless Chromium for the report tests: Debian's `chromium` (installed by .ci/run), driven
 * by playwright-core. Without it a test is skipped with a message — except under CI=true,
 * where a missing browser fails it.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** True when the browser tests cannot run here (and may be skipped). */
export function skipWithoutChromium(testName: string): boolean {
  const skip = !existsSync(CHROMIUM) && !process.env.CI;
  if (skip) console.warn(`${testName}: skipped, ${CHROMIUM} is absent (apt-get install chromium)`);
  return skip;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
