import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { apply, chainWorkflow, emulator, items, openStore, tempDir, writeFiles } from "./engine-harness.js";

const HAILUO = "minimax/Hailuo Video 01 Live";

describe("model steps", () => {
  test("a run-time input that breaks a media rule fails its step with the schema's message and submits nothing", async () => {
    const api = await emulator();
    const dir = tempDir();
    // Hailuo makes a 17 MB video; Aleph accepts less than 16 MB.
    const workflow = chainWorkflow({
      items: [{ id: "big", prompt: "a storm [emulator:output-bytes=17000000]" }],
      mediaBase: api.url,
    });
    writeFiles(dir, { "chain.yaml": workflow });
    const result = await apply(dir, "chain.yaml", api, { download: false });
    expect(result.exitCode).toBe(1);
    expect(result.counts).toEqual({ succeeded: 1, failed: 1 });
    const failed = result.steps.find((e) => e.state === "failed");
    expect(failed?.address).toBe("clip/big/restyle");
    expect(failed?.error).toContain("File size must be less than 16 MB.");
    expect(api.submissions().byModel).toEqual({ [HAILUO]: 1 });
  });

  test("a remote failure is retried as a new attempt, up to retry.attempts, then the step fails and its dependents are blocked", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, {
      "chain.yaml": chainWorkflow({
        items: [{ id: "oom", prompt: "a crash [emulator:fail=GPU out of memory]" }],
        mediaBase: api.url,
        retry: "{ attempts: 3, backoff: 10ms, max_backoff: 20ms }",
      }),
    });
    const result = await apply(dir, "chain.yaml", api);
    expect(result.exitCode).toBe(1);
    expect(result.counts).toEqual({ failed: 1, blocked: 1 });
    const animate = result.steps.filter((e) => e.address === "clip/oom/animate");
    expect(animate.filter((e) => e.state === "submitting").map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(animate.at(-1)).toMatchObject({ state: "failed", error: "GPU out of memory (attempt 3 of 3)" });
    const blocked = result.steps.find((e) => e.state === "blocked");
    expect(blocked).toMatchObject({ address: "clip/oom/restyle", error: "not run: clip/oom/animate failed" });
    expect(api.submissions().byModel).toEqual({ [HAILUO]: 3 });
    const store = openStore(dir);
    expect(store.getAttempts(result.runId, "clip/oom/animate").map((a) => a.state)).toEqual([
      "failed",
      "failed",
      "failed",
    ]);
  });

  test("an attempt that times out while queued is cancelled at the API, marked timed out and retried", async () => {
    // One slot, held: the first request runs and the second queues for as long as the test lasts.
    const api = await emulator({ capacity: 1 });
    const dir = tempDir();
    writeFiles(dir, {
      "wf.yaml": `version: 1
name: slow
defaults:
  retry: { attempts: 2, backoff: 10ms }
  timeout: 300ms
  poll: { interval: 20ms, max_interval: 50ms }
jobs:
  clip:
    for_each: [{ id: first }, { id: second }]
    steps:
      - id: animate
        model: ${HAILUO}
        input:
          prompt: "\${{ item.id }} [emulator:hold]"
          image_url: "${api.url}/media/image.png"
`,
    });
    const result = await apply(dir, "wf.yaml", api);
    expect(result.exitCode).toBe(1);
    expect(result.counts).toEqual({ timed_out: 2 });
    // The queued one was cancelled; the running one could not be, and the run says so.
    expect(api.state().requests.cancelled).toBeGreaterThan(0);
    const warnings = result.events.filter((e) => e.event === "notice" && e.level === "warn");
    expect(
      warnings.some((e) => e.event === "notice" && e.message.includes("cannot cancel a running request")),
    ).toBe(true);
    expect(api.submissions().total).toBe(4);
  });

  test("a reused step's files are linked into this run's folder when the outputs folder moved", async () => {
    const api = await emulator();
    const dir = tempDir();
    const workflow = chainWorkflow({ items: items(2), mediaBase: api.url })
      .replace("jobs:", 'outputs: "out/${{ vars.batch }}/${{ job.key }}"\njobs:')
      .replace("vars:\n", 'vars:\n  batch: "monday"\n');
    writeFiles(dir, { "chain.yaml": workflow });
    expect((await apply(dir, "chain.yaml", api)).exitCode).toBe(0);
    const second = await apply(dir, "chain.yaml", api, { vars: { batch: "tuesday" } });
    expect(second.counts).toEqual({ reused: 4 });
    expect(api.submissions().total).toBe(4);
    const moved = path.join(dir, "out", "tuesday", "item-2", ".runs", second.runId, "restyle.mp4");
    expect(statSync(moved).size).toBe(2015);
    const store = openStore(dir);
    expect(store.getOutputs(second.runId).find((o) => o.path === moved)?.sha256).toMatch(/^[0-9a-f]{64}$/);
    // ...and shown in the moved folder's latest view.
    expect(statSync(path.join(dir, "out", "tuesday", "item-2", "restyle.mp4")).ino).toBe(statSync(moved).ino);
  });

  test("--fresh reuses nothing", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(2), mediaBase: api.url }) });
    await apply(dir, "chain.yaml", api);
    const fresh = await apply(dir, "chain.yaml", api, { fresh: true });
    expect(fresh.counts).toEqual({ succeeded: 4 });
    expect(api.submissions().total).toBe(8);
  });

  test("with --no-download, outputs are recorded by URL and nothing is written", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(1), mediaBase: api.url }) });
    const result = await apply(dir, "chain.yaml", api, { download: false });
    expect(result.exitCode).toBe(0);
    expect(existsSync(path.join(dir, "outputs"))).toBe(false);
    const outputs = openStore(dir).getOutputs(result.runId);
    expect(outputs.map((o) => [o.path, o.url.startsWith(api.url)])).toEqual([
      [undefined, true],
      [undefined, true],
    ]);
  });

  test("a refused token stops the whole run with exit 4; steps not yet submitted are cancelled", async () => {
    const api = await emulator({ token: "the-only-good-token" });
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(3), mediaBase: api.url, concurrency: 1 }) });
    const result = await apply(dir, "chain.yaml", api);
    expect(result.exitCode).toBe(4);
    expect(result.status).toBe("auth_failed");
    expect(result.counts.failed).toBe(1);
    expect(result.counts.cancelled).toBe(2);
    expect(result.steps.find((e) => e.state === "failed")?.error).toContain("refused the API token");
  });
});

describe("run steps", () => {
  const runWorkflow = (argv: string) => `version: 1
name: local
defaults:
  retry: { attempts: 1 }
jobs:
  make:
    for_each: [{ id: one }]
    steps:
      - id: write
        run: ${argv}
        env: { GREETING: "hello \${{ item.id }}" }
        outputs: { note: note.txt }
      - id: count
        run: [wc, -c, "\${{ steps.write.files.note }}"]
`;

  test("runs without a shell in the instance's outputs folder, checks named outputs, keeps stdout, and is reused while its inputs are unchanged", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, {
      "local.yaml": runWorkflow(
        `[node, "-e", "require('fs').writeFileSync('note.txt', process.env.GREETING + ' $HOME'); console.log('wrote')"]`,
      ),
    });
    const first = await apply(dir, "local.yaml", api);
    expect(first.exitCode).toBe(0);
    // In the run's own folder of the instance (the instance's folder shows it as the latest).
    const note = path.join(dir, "outputs", "local", "one", ".runs", first.runId, "note.txt");
    // No shell: `$HOME` stayed as written.
    expect(readFileSync(note, "utf8")).toBe("hello one $HOME");
    expect(readFileSync(path.join(dir, "outputs", "local", "one", "note.txt"), "utf8")).toBe(
      "hello one $HOME",
    );
    const store = openStore(dir);
    const steps = store.getSteps(first.runId);
    expect(steps.map((s) => [s.stepId, s.state, s.stdout])).toEqual([
      ["write", "succeeded", "wrote"],
      ["count", "succeeded", `15 ${note}`],
    ]);

    const second = await apply(dir, "local.yaml", api);
    expect(second.counts).toEqual({ reused: 2 });

    // The count step reads note.txt: a changed file is a changed input, so it runs again.
    // (Reused, `write` takes over its recorded file only while it is unchanged: an edit in
    // place, which every run's link to it shares, makes it run again.)
    const edited = "changed by hand, longer";
    writeFileSync(
      path.join(dir, "local.yaml"),
      runWorkflow(`[node, "-e", "require('fs').writeFileSync('note.txt', '${edited}')"]`),
    );
    const third = await apply(dir, "local.yaml", api);
    expect(third.counts).toEqual({ succeeded: 2 });
    const fourth = await apply(dir, "local.yaml", api);
    expect(fourth.counts).toEqual({ reused: 2 });
    // Editing the file in place (through the latest view) changes the recorded file: `write`
    // cannot take it over and runs again; `count` then reads what it read before, and is reused.
    writeFileSync(path.join(dir, "outputs", "local", "one", "note.txt"), "edited by hand, longer!");
    const fifth = await apply(dir, "local.yaml", api);
    expect(fifth.steps.filter((e) => e.state === "reused").map((e) => e.step)).toEqual(["count"]);
    expect(fifth.counts).toEqual({ reused: 1, succeeded: 1 });
  });

  test("a named output the program did not produce fails the step", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "local.yaml": runWorkflow(`[node, "-e", "0"]`) });
    const result = await apply(dir, "local.yaml", api);
    expect(result.exitCode).toBe(1);
    expect(result.steps.find((e) => e.state === "failed")?.error).toMatch(
      /^output `note` was not produced: no file at /,
    );
    expect(result.counts).toEqual({ failed: 1, blocked: 1 });
  });

  test("a program that is not installed fails its step with a clear message", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "local.yaml": runWorkflow(`[no-such-program-runflow, x]`) });
    const result = await apply(dir, "local.yaml", api);
    expect(result.steps.find((e) => e.state === "failed")?.error).toBe(
      "no-such-program-runflow: command not found (is it installed and on PATH?)",
    );
  });

  test("a non-zero exit fails the step with the end of its stderr", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, {
      "local.yaml": runWorkflow(`[node, "-e", "console.error('bad input'); process.exit(3)"]`),
    });
    const result = await apply(dir, "local.yaml", api);
    expect(result.steps.find((e) => e.state === "failed")?.error).toBe("node exited with code 3: bad input");
  });
});
