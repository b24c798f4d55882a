import path from "node:path";
import { describe, expect, test } from "vitest";
import {
  chainYaml,
  fileSize,
  itemsCsv,
  ndjson,
  project,
  readBytes,
  submissionCounts,
} from "./apply-harness.js";

describe("runflow apply (end to end)", () => {
  test("a two-step chain over 20 items completes with every output on disk at its size, and a second apply submits nothing", async () => {
    // Each animate output gets its own size, so a mixed-up file would show.
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(20, (i) => ` [emulator:output-bytes=${3000 + i}]`),
    });

    const first = await p.run(["apply", "chain.yaml", "--json"]);
    expect(first.stderr).toBe("");
    expect(first.exitCode).toBe(0);
    const events = ndjson(first.stdout);
    expect(events[0]?.event).toBe("run_started");
    expect(events.at(-1)).toMatchObject({
      event: "run_finished",
      status: "succeeded",
      exitCode: 0,
      counts: { succeeded: 40 },
    });
    expect(p.api.submissions().total).toBe(40);
    expect(submissionCounts(p.api).every((count) => count === 1)).toBe(true);

    const store = p.store();
    const runId = String(events[0]?.runId);
    const outputs = store.getOutputs(runId);
    expect(outputs).toHaveLength(40);
    for (const output of outputs) {
      expect(fileSize(output.path!)).toBe(output.bytes);
      const [, key, step] = output.address.split("/");
      const expected = step === "animate" ? 3000 + Number(key!.slice("item-".length)) : 2015;
      expect(output.bytes).toBe(expected);
      // In the run's own folder; the instance's folder shows the same file as the latest.
      expect(output.path).toBe(path.join(p.dir, "outputs", "chain", key!, ".runs", runId, `${step}.mp4`));
      expect(readBytes(path.join(p.dir, "outputs", "chain", key!, `${step}.mp4`))).toEqual(
        readBytes(output.path!),
      );
    }

    const second = await p.run(["apply", "chain.yaml"]);
    expect(second.exitCode).toBe(0);
    expect(p.api.submissions().total).toBe(40);
    expect(second.stdout).toMatch(/succeeded in .* 40 steps: 40 reused/);
    expect(second.stdout).toContain("outputs: outputs/chain");
  });

  test("--json writes only events on stdout: run_started first, a step event per change, run_finished last", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(2) });
    const result = await p.run(["apply", "chain.yaml", "--json"]);
    const events = ndjson(result.stdout);
    expect(events.map((e) => e.event).filter((e) => e === "run_started" || e === "run_finished")).toEqual([
      "run_started",
      "run_finished",
    ]);
    const animate = events
      .filter((e) => e.event === "step" && e.address === "clip/item-1/animate")
      .map((e) => e.state);
    expect(animate).toEqual(expect.arrayContaining(["waiting", "submitting", "downloading", "succeeded"]));
    expect(animate.at(-1)).toBe("succeeded");
    // The first state after the submission carries the request id it got.
    const submitted = events.find(
      (e) => e.event === "step" && e.address === "clip/item-1/animate" && e.previous === "submitting",
    );
    expect(submitted).toMatchObject({ job: "clip/item-1", attempt: 1 });
    expect(typeof submitted?.requestId).toBe("string");
  });

  test("plain output is one timestamped line per state change, then the summary", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(1) });
    const result = await p.run(["apply", "chain.yaml"]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ apply \S+: workflow chain \(chain\.yaml\), 2 steps in 1 instance, concurrency 8$/,
    );
    expect(lines).toContainEqual(expect.stringMatching(/Z clip\/item-1\/restyle succeeded$/));
    expect(result.stdout).not.toContain("\u001b[");
    expect(lines.at(-3)).toMatch(/^run \S+ succeeded in \S+ — 2 steps: 2 succeeded$/);
    // The emulator's default video price: $0.10/second × 5 s, twice.
    expect(lines.at(-2)).toBe("cost: $1.00");
  });

  test("--dry-run prints the plan and submits nothing", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(3) });
    const result = await p.run(["apply", "chain.yaml", "--dry-run"]);
    expect(result.exitCode).toBe(0);
    expect(p.api.submissions().total).toBe(0);
    expect(result.stdout).toContain("3 to submit");
  });

  test("an invalid workflow exits 2 and submits nothing", async () => {
    const p = await project({
      "chain.yaml": chainYaml().replace('ratio: "1280:720"', 'ratio: "1280:721"'),
      "items.csv": itemsCsv(2),
    });
    const result = await p.run(["apply", "chain.yaml"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("chain.yaml:");
    expect(p.api.submissions().total).toBe(0);
  });

  test("a static media URL that breaks a model's rule exits 2 before anything is submitted", async () => {
    const p = await project({
      "chain.yaml": chainYaml().replace("w=640&h=480", "w=200&h=200"),
      "items.csv": itemsCsv(2),
    });
    const result = await p.run(["apply", "chain.yaml"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("must both exceed 300 pixels");
    expect(p.api.submissions().total).toBe(0);
  });
});
