import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import {
  chainYaml,
  filesUnder,
  itemsCsv,
  lockHolder,
  ndjson,
  project,
  TOKEN,
  until,
  waitForOutput,
} from "./apply-harness.js";

describe("one live apply per workflow", () => {
  test("a second apply of the same workflow exits 3; with --wait it waits, then reuses what the first did", async () => {
    // The first apply's requests are held in progress until the test releases them: it is
    // still running while the others try, however slow the machine. Every wait below is for
    // a state the test can see (the emulator's held requests, the lock row, a line printed),
    // never for a duration.
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(2, () => " [emulator:hold]"),
    });
    const first = p.start(["apply", "chain.yaml"]);
    await until("the emulator to hold both requests of the first apply", () => {
      if (first.exitCode !== null) throw new Error(`the first apply ended early (exit ${first.exitCode})`);
      return p.api.state().held === 2;
    });
    // It submitted, so it holds the lock: the row names its process.
    const holder = lockHolder(p.dir, "chain");
    expect(holder?.pid).toBe(first.pid);

    const second = await p.run(["apply", "chain.yaml"]);
    expect(second.exitCode).toBe(3);
    expect(second.stderr).toMatch(/error: another apply of workflow chain is running: run \S+ \(pid \d+ on /);
    expect(second.stderr).toContain(`run ${holder!.runId} (pid ${first.pid} on `);
    expect(second.stderr).toContain("--wait");
    // With --json: stdout holds only NDJSON events, the error is one JSON object on stderr.
    const json = await p.run(["apply", "chain.yaml", "--json"]);
    expect(json.exitCode).toBe(3);
    expect(() => ndjson(json.stdout)).not.toThrow();
    expect(JSON.parse(json.stderr)).toMatchObject({ event: "error", code: "lock_held", exit_code: 3 });

    const waiting = p.start(["apply", "chain.yaml", "--wait"]);
    await waitForOutput(waiting, "waiting for the apply of run");
    expect(p.api.state().held).toBe(2);
    expect(p.api.release()).toBe(2);
    expect((await first).exitCode).toBe(0);
    const waited = await waiting;
    expect(waited.exitCode).toBe(0);
    expect(waited.all).toMatch(/4 steps: 4 reused/);
    expect(p.api.submissions().total).toBe(4);
    // Each apply let the lock go at its end.
    expect(lockHolder(p.dir, "chain")).toBeUndefined();
  });
});

describe("the API token", () => {
  test("appears nowhere: not in the database files, the outputs, stdout, stderr or errors", async () => {
    const WRONG = "rf-wrong-token-31d9e0a7c5b4";
    const workflow = `${chainYaml()}      - id: listing
        run: [env]
        needs: [restyle]
`;
    const p = await project(
      { "chain.yaml": workflow, "items.csv": itemsCsv(3, (i) => (i === 3 ? " [emulator:fail=boom]" : "")) },
      { token: TOKEN },
    );
    const outputs: string[] = [];
    const record = (result: { stdout: string; stderr: string }) => outputs.push(result.stdout, result.stderr);

    const applied = await p.run(["apply", "chain.yaml"]);
    record(applied);
    expect(applied.exitCode).toBe(1);
    const json = await p.run(["apply", "chain.yaml", "--json", "--verbose"]);
    record(json);
    record(await p.run(["retry", "--verbose"]));
    record(await p.run(["status", "--json"]));
    record(await p.run(["runs"]));

    const refused = await p.run(["apply", "chain.yaml", "--fresh", "--verbose"], {
      env: { RUNCOMFY_API_TOKEN: WRONG },
    });
    record(refused);
    expect(refused.exitCode).toBe(4);
    expect(refused.stdout).toContain("stopped: the API refused the token");

    // The run step saw an environment without the token, and its stdout was kept.
    const store = p.store();
    const listing = store
      .getSteps(store.listRuns({ limit: 10 }).at(-1)!.id)
      .find((s) => s.stepId === "listing");
    expect(listing?.stdout).toContain("PATH=");

    for (const text of outputs) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(WRONG);
    }
    const files = filesUnder(p.dir);
    expect(files.some((file) => file.endsWith("runflow.db"))).toBe(true);
    expect(files.some((file) => file.endsWith(".mp4"))).toBe(true);
    for (const file of files) {
      const bytes = readFileSync(file);
      expect(bytes.includes(TOKEN), file).toBe(false);
      expect(bytes.includes(WRONG), file).toBe(false);
    }
  });

  test("is needed only by a run with model steps: a workflow of run: steps applies and retries without one", async () => {
    const local = `version: 1
name: local
jobs:
  notes:
    steps:
      - id: write
        run: [node, -e, "require('fs').writeFileSync('note.txt', 'kept')"]
        outputs: { note: note.txt }
`;
    const p = await project({ "local.yaml": local, "chain.yaml": chainYaml(), "items.csv": itemsCsv(1) });
    const noToken = { env: { RUNCOMFY_API_TOKEN: undefined, YOUR_API_TOKEN: undefined } };

    const applied = await p.run(["apply", "local.yaml"], noToken);
    expect(applied.stderr).not.toContain("RUNCOMFY_API_TOKEN");
    expect(applied.exitCode).toBe(0);
    expect(filesUnder(p.dir).some((file) => file.endsWith("note.txt"))).toBe(true);
    expect((await p.run(["retry"], noToken)).exitCode).toBe(0);

    // A workflow that submits still says what is missing, and submits nothing.
    const refused = await p.run(["apply", "chain.yaml"], noToken);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("no RunComfy API token: RUNCOMFY_API_TOKEN is not set");
    expect(p.api.submissions().total).toBe(0);
  });
});
