/**
 * Waits for a state, not for a duration: asks `check` every 50 ms until it gives a value
 * (anything but undefined), which it returns; gives up after `limitMs` with what it waited for.
 */
export async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  limitMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
