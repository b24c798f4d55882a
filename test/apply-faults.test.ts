import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, ndjson, project, submissionCounts } from "./apply-harness.js";

describe("runflow apply under faults", () => {
  test("5xx and 429 on every endpoint, Retry-After and slow answers: everything completes, nothing is submitted twice", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(12) }, { duration: 80 });
    // A fixed number of failures per endpoint, fewer than the attempts a call gets (5 for API
    // calls and downloads, 4 for media probes, which read /files too): even if every one
    // lands on the same call, its last attempt goes through. Faults drawn by `rate` could now
    // and then take every attempt of one call: the test failed by chance (1 run in 5).
    p.api.configure({
      faults: [
        // A submit is retried only when it surely created nothing: 429s, and a slow answer.
        { endpoint: "submit", kind: "429", retryAfter: 1, times: 1 },
        { endpoint: "submit", kind: "429", times: 3 },
        { endpoint: "submit", kind: "slow", delayMs: 300, times: 3 },
        { endpoint: "status", kind: "503", times: 3 },
        { endpoint: "status", kind: "429", retryAfter: 1, times: 1 },
        { endpoint: "status", kind: "slow", delayMs: 300, times: 3 },
        { endpoint: "result", kind: "500", times: 1 },
        { endpoint: "result", kind: "502", times: 2 },
        { endpoint: "result", kind: "429", times: 1 },
        { endpoint: "files", kind: "504", times: 1 },
        { endpoint: "files", kind: "429", times: 1 },
        { endpoint: "files", kind: "truncate", times: 1 },
        { endpoint: "media", kind: "503", times: 1 },
      ],
    });
    const result = await p.run(["apply", "chain.yaml", "--json"], { timeoutMs: 60_000 });
    expect(result.stderr).toBe("");
    const finished = ndjson(result.stdout).at(-1);
    expect(finished).toMatchObject({ event: "run_finished", exitCode: 0, counts: { succeeded: 24 } });
    expect(p.api.submissions().total).toBe(24);
    expect(submissionCounts(p.api).every((count) => count === 1)).toBe(true);
    // The faults did fire.
    const faulted = p.api.requestLog().filter((entry) => entry.fault !== undefined);
    expect(new Set(faulted.map((entry) => entry.endpoint))).toEqual(
      new Set(["submit", "status", "result", "files", "media"]),
    );
  });

  test("a submission answered by a 5xx is `unknown`: reported, not resubmitted, on this apply or the next", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(3) });
    p.api.configure({ faults: [{ endpoint: "submit", kind: "503", times: 1 }] });

    const first = await p.run(["apply", "chain.yaml"]);
    expect(first.exitCode).toBe(1);
    // One sentence: what happened, and that it is not sent again, each said once.
    const line = first.stdout.split("\n").find((text) => /^ {2}clip\/\S+ unknown: /.test(text))!;
    expect(line).toMatch(
      /^ {2}clip\/item-\d\/animate unknown: submit: HTTP 503: [^;]+; it may have been created \(and billed\), so it is not sent again$/,
    );
    // The summary says how to send it anyway, with the run's id.
    expect(first.stdout).toMatch(/to submit them again: runflow retry \S+ --resubmit-unknown$/m);
    expect(first.stdout).toMatch(/4 succeeded, 2 failed \(1 unknown, 1 blocked\)/);
    const submitted = p.api.submissions().total;
    expect(submitted).toBe(4);

    const second = await p.run(["apply", "chain.yaml"]);
    expect(second.exitCode).toBe(1);
    expect(second.stdout).toMatch(/4 reused, 2 failed \(1 unknown, 1 blocked\)/);
    expect(p.api.submissions().total).toBe(submitted);
  });

  test("a POST whose answer is lost leaves the step `unknown`, and a second apply does not send it again", async () => {
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(3, (i) => (i === 2 ? " [emulator:lost-answer]" : "")),
    });
    const first = await p.run(["apply", "chain.yaml", "--json"]);
    expect(first.exitCode).toBe(1);
    const unknown = ndjson(first.stdout).filter((e) => e.event === "step" && e.state === "unknown");
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ address: "clip/item-2/animate" });
    expect(String(unknown[0]?.error)).toContain(
      "it may have been created (and billed), so it is not sent again",
    );
    // The emulator created it: one submission, whose answer never arrived.
    expect(p.api.submissions().byBody.filter((group) => group.count > 0)).toHaveLength(5);

    const second = await p.run(["apply", "chain.yaml"]);
    expect(second.exitCode).toBe(1);
    expect(second.stdout).toMatch(
      /clip\/item-2\/animate unknown: an earlier submission \(run \S+, attempt 1\) may have been created/,
    );
    expect(p.api.submissions().total).toBe(5);
    expect(submissionCounts(p.api).every((count) => count === 1)).toBe(true);
  });

  test("retry.resubmit_unknown: true submits again a step whose submission got a 5xx", async () => {
    const p = await project({
      "chain.yaml": chainYaml({ retry: "{ attempts: 2, backoff: 50ms, resubmit_unknown: true }" }),
      "items.csv": itemsCsv(2),
    });
    p.api.configure({ faults: [{ endpoint: "submit", kind: "500", times: 1 }] });
    const result = await p.run(["apply", "chain.yaml"]);
    expect(result.exitCode).toBe(0);
    // The 500 created nothing here, so each body was still accepted exactly once.
    expect(p.api.submissions().total).toBe(4);
    expect(submissionCounts(p.api).every((count) => count === 1)).toBe(true);
  });
});
