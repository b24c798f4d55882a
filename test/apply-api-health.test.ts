/**
 * A status endpoint that answers garbage — an empty 200, truncated JSON, a redirect, a
 * gateway's HTML 502 — is polled on (the request still exists; it is never resubmitted),
 * and the run says so once when the API starts failing and once when it answers again,
 * not once per poll. Before, such a stretch was polled in silence until the attempt timed out.
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
    const output = `${result.stdout}\n${result.stderr}`;
    const failing = output.split("\n").filter((line) => line.includes("the RunComfy API is failing"));
    expect(failing).toHaveLength(1);
    expect(failing[0]).toContain(
      "warning: the RunComfy API is failing (status: HTTP 200 with an empty body: the answer could not be used; retrying)",
    );
    const recovered = output.split("\n").filter((line) => line.includes("the RunComfy API answers again"));
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatch(/answers again, after .+ and 6 failed calls$/);
    // Every fault fired, and each request was submitted once.
    expect(p.api.config().faults).toEqual([]);
    expect(p.api.submissions().total).toBe(2);
  }, 90_000);
});
