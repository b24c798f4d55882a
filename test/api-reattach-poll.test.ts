/**
 * Re-attaching to a request (after a restart, or when a worker takes over a dead one's step)
 * asks for its status at once (`lookFirst`), instead of waiting a poll interval first — for a
 * request of a model whose duration is still unknown, and that is not its scout, that first
 * wait would be `poll.max_interval`. Over real HTTP against the emulator, on a virtual clock
 * that records every wait.
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { RunComfyClient } from "../src/api/client.js";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import { fakeClock, HAILUO, hailuoInput, TOKEN } from "./api-helpers.js";

let emulator: RunningEmulator;
const clock = fakeClock();

beforeAll(async () => {
  emulator = await startEmulator({ token: TOKEN, duration: 60_000, clock: { now: () => clock.now() } });
});
afterAll(() => emulator.close());

/** A guide of a model whose duration no request has taught yet, for a request that is not its scout. */
const notTheScout = {
  typicalMs: () => undefined,
  guessing: () => false,
  changed: () => new AbortController().signal,
};

test("a re-attached request is asked for its status before any wait; a new one waits first", async () => {
  const api = new RunComfyClient({ baseUrl: emulator.url, token: TOKEN, clock, random: () => 0.5 });
  const outcome = await api.submit(HAILUO, hailuoInput(emulator.url));
  if (outcome.kind !== "submitted") throw new Error(`expected a submission, got ${outcome.reason}`);
  const startedAt = clock.now();

  const waitsBeforeFirstStatus = async (lookFirst: boolean) => {
    const before = clock.sleeps.length;
    const stop = new AbortController();
    let waits: number | undefined;
    await api
      .waitForResult(outcome.requestId, {
        guide: notTheScout,
        startedAt,
        lookFirst,
        signal: stop.signal,
        onStatus: () => {
          waits ??= clock.sleeps.length - before;
          stop.abort();
        },
      })
      .catch(() => undefined);
    return waits;
  };

  expect(await waitsBeforeFirstStatus(true)).toBe(0);
  expect(await waitsBeforeFirstStatus(false)).toBe(1);
});
