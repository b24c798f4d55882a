/** The plain log and why things wait: one line when the API starts failing, one when it recovers, none per poll. */
import { describe, expect, it } from "vitest";
import { plainLine } from "../src/render/plain.js";
import { RUN_ID } from "./render-tty-events.js";

const at = (s: number) => Date.UTC(2025, 0, 1, 2, 0, s);

describe("plainLine and the API's health", () => {
  it("writes the outage once with since when and the last error, and its end with how long it lasted", () => {
    expect(
      plainLine({
        event: "api_unreachable",
        at: at(20),
        runId: RUN_ID,
        since: at(3),
        failures: 1,
        error: "no answer from http://127.0.0.1:9 to the status call (ECONNREFUSED)",
      }),
    ).toBe(
      "2025-01-01T02:00:20Z warning: API unreachable since 2025-01-01T02:00:03Z: no answer from http://127.0.0.1:9 to the status call (ECONNREFUSED); its calls are retried until it answers",
    );
    expect(plainLine({ event: "api_recovered", at: at(43), runId: RUN_ID, since: at(3) })).toBe(
      "2025-01-01T02:00:43Z API recovered: it answers again after 40s unreachable",
    );
  });

  it("writes nothing for a step's wait (it changes with every poll) nor for a learned duration", () => {
    expect(
      plainLine({
        event: "step_wait",
        at: at(5),
        runId: RUN_ID,
        job: "t/a",
        step: "animate",
        address: "t/a/animate",
        reason: { kind: "backoff", until: at(6), why: "HTTP 503", before: "poll" },
      }),
    ).toBeUndefined();
    expect(
      plainLine({ event: "typical_duration", at: at(5), runId: RUN_ID, model: "m", typicalMs: 1_000 }),
    ).toBeUndefined();
  });
});
