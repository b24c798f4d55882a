/**
 * A status endpoint that answers garbage — an empty 200, truncated JSON, a redirect, a
 * gateway's HTML 502 — is polled on (the request still exists; it is never resubmitted),
 * and counted toward the run's "API unreachable" like a 5xx: said once when it starts and
 * once when the API answers again, not once per poll. Before, such a stretch was polled in
 * silence until the attempt timed out.
 */
import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project } from "./apply-harness.js";

describe("an API that answers garbage is heard once, not per poll", () => {
  test("empty 200, truncated JSON, 307 and HTML 502 on /status: one warning, one recovery line, nothing resubmitted", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(1) });
    p.api.configure({
      faults: [
        { endpoint: "status", kind: "empty-200", times: 2 },
        { endpoint: "status", kind: "truncated-json", times: 2 },
        { endpoint: "status", kind: "307", times: 1 },
        { endpoint: "status", kind: "502", times: 1 },
      ],
    });
    const result = await p.run(["apply", "chain.yaml"], { timeoutMs: 60_000 });
    expect(result.exitCode).toBe(0);
    const lines = `${result.stdout}\n${result.stderr}`.split("\n");
    // Through the run's "API unreachable" judgement (engine/api-health.ts), like a 5xx: the first
    // poll's five tries all got garbage (two empty 200s, two truncated JSON, a redirect).
    const unreachable = lines.filter((line) => line.includes("API unreachable since"));
    expect(unreachable).toHaveLength(1);
    expect(unreachable[0]).toContain("warning: API unreachable since ");
    expect(unreachable[0]).toContain(
      ": the RunComfy API's answer to the status call could not be used: HTTP 307, an answer the API never gives; its calls are retried until it answers",
    );
    expect(lines.filter((line) => line.includes("API recovered: it answers again after"))).toHaveLength(1);
    // Every fault fired, and each request was submitted once.
    expect(p.api.config().faults).toEqual([]);
    expect(p.api.submissions().total).toBe(2);
  }, 90_000);
});
