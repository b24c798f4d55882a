/**
 * The HTTP media probes go through (preflight and run-time checks): a media host answering
 * 429 or 5xx, or a connection that fails, is tried again a few times with backoff, as SPEC
 * §4 asks of every idempotent call — one hiccup of an image host must not reject a batch.
 */
import { fetchTransport, isOk, undiciTransport, type HttpTransport } from "./http.js";
import { backoff, classify } from "./retry-policy.js";
import { systemClock, type Clock, type Random } from "../util/clock.js";

export interface RetryingTransportOptions {
  /** Tests put faults in front of the network with a `fetch`; default undici (api/http.ts). */
  fetch?: typeof fetch | undefined;
  clock?: Clock | undefined;
  random?: Random | undefined;
  /** Every try counts, the first included (default 4). */
  attempts?: number | undefined;
}

export function retryingTransport(options: RetryingTransportOptions = {}): HttpTransport {
  const inner = options.fetch ? fetchTransport(options.fetch) : undiciTransport;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const attempts = options.attempts ?? 4;
  const policy = { baseMs: 250, maxMs: 5_000 };
  return async (request) => {
    for (let attempt = 1; ; attempt++) {
      let verdict;
      try {
        const answer = await inner(request);
        if (isOk(answer) || attempt >= attempts) return answer;
        verdict = classify({
          phase: "probe",
          status: answer.status,
          headers: answer.headers,
          now: clock.now(),
        });
        if (verdict.action !== "retry") return answer;
        await answer.discard();
      } catch (error) {
        if (request.signal?.aborted || attempt >= attempts) throw error;
        verdict = classify({ phase: "probe", error });
        if (verdict.action !== "retry") throw error;
      }
      await clock.sleep(backoff(attempt, policy, random, verdict.retryAfterMs), request.signal);
    }
  };
}
