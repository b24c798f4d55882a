/**
 * The fetch media probes go through (preflight and run-time checks): a media host answering
 * 429 or 5xx, or a connection that fails, is tried again a few times with backoff, as SPEC
 * §4 asks of every idempotent call — one hiccup of an image host must not reject a batch.
 */
import { backoff, classify } from "../api/retry-policy.js";
import { systemClock, type Clock, type Random } from "../util/clock.js";

export interface RetryingFetchOptions {
  fetch?: typeof fetch | undefined;
  clock?: Clock | undefined;
  random?: Random | undefined;
  /** Every try counts, the first included (default 4). */
  attempts?: number | undefined;
}

export function retryingFetch(options: RetryingFetchOptions = {}): typeof fetch {
  const inner = options.fetch ?? globalThis.fetch;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const attempts = options.attempts ?? 4;
  const policy = { baseMs: 250, maxMs: 5_000 };
  return async (input, init) => {
    const signal = init?.signal ?? undefined;
    for (let attempt = 1; ; attempt++) {
      let verdict;
      try {
        const response = await inner(input, init);
        if (response.ok || attempt >= attempts) return response;
        verdict = classify({
          phase: "probe",
          status: response.status,
          headers: response.headers,
          now: clock.now(),
        });
        if (verdict.action !== "retry") return response;
        await response.body?.cancel().catch(() => undefined);
      } catch (error) {
        if (signal?.aborted || attempt >= attempts) throw error;
        verdict = classify({ phase: "probe", error });
        if (verdict.action !== "retry") throw error;
      }
      await clock.sleep(backoff(attempt, policy, random, verdict.retryAfterMs), signal);
    }
  };
}
