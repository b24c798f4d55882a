/**
 * The morning after: `runflow runs` and `runflow status` on the state a real apply left,
 * the CLI spawned as a user runs it.
 */
import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project, until, waitForOutput } from "./apply-harness.js";

const FAILING = {
  "flow.yaml": chainYaml({ name: "night" }),
  "items.csv": itemsCsv(3, (i) => (i === 2 ? " [emulator:fail=GPU out of memory]" : "")),
};

describe("runflow runs", () => {
  test("lists the runs newest first as a table with a header, and as JSON", async () => {
    const flow = await project(FAILING);
    expect((await flow.run(["apply", "flow.yaml", "--quiet"])).exitCode).toBe(1);
    expect((await flow.run(["retry", "--quiet"])).exitCode).toBe(1);

    const table = await flow.run(["runs"]);
    expect(table.exitCode).toBe(0);
    const [header, retry, apply, ...rest] = table.stdout.trimEnd().split("\n");
    expect(rest).toEqual([]);
    expect(header).toMatch(/^RUN\s+KIND\s+WORKFLOW\s+API\s+STATUS\s+STARTED\s+TOOK\s+COST\s+STEPS$/);
    expect(retry).toMatch(
      /^\S+\s+retry\s+night\s+emulator \S+\s+failed\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\S+\s+\$\d+\.\d\d\s+2 failed \(1 blocked\)$/,
    );
    expect(apply).toMatch(
      /^\S+\s+apply\s+night\s+emulator \S+\s+failed\s+.*4 succeeded, 2 failed \(1 blocked\)$/,
    );
    // Columns line up: every row's STATUS starts where the header's does.
    const statusColumn = header!.indexOf("STATUS");
    expect(retry!.slice(statusColumn)).toMatch(/^failed/);
    expect(apply!.slice(statusColumn)).toMatch(/^failed/);

    const json = JSON.parse((await flow.run(["runs", "--json"])).stdout) as {
      kind: string;
      status: string;
    }[];
    expect(json.map((run) => [run.kind, run.status])).toEqual([
      ["retry", "failed"],
      ["apply", "failed"],
    ]);
  });

  test("shows a run whose process was killed as died, not running", async () => {
    const flow = await project(
      { "flow.yaml": chainYaml({ name: "night" }), "items.csv": itemsCsv(2) },
      { duration: 60_000 },
    );
    const child = flow.start(["apply", "flow.yaml"]);
    await waitForOutput(child, /in_progress|in_queue/);
    child.kill("SIGKILL");
    await child.catch(() => undefined);

    const table = await flow.run(["runs"]);
    expect(table.stdout).toContain("died (apply again to resume)");
    expect((await flow.run(["status"])).stdout).toMatch(/: died \(apply again to resume\)/);
    // Scripts read the same from --json: still `running` as recorded, its process gone.
    const [listed] = JSON.parse((await flow.run(["runs", "--json"])).stdout) as {
      status: string;
      process?: string;
    }[];
    expect(listed).toMatchObject({ status: "running", process: "gone" });
    const status = JSON.parse((await flow.run(["status", "--json"])).stdout) as { run: { process?: string } };
    expect(status.run.process).toBe("gone");
  });
});

describe("a run whose work a later apply finished", () => {
  test("is no longer shown died or in progress: it names the run that finished it (runs, status, --json)", async () => {
    // Held: its requests are still running when the apply dies, however slow the machine.
    const flow = await project({
      "flow.yaml": chainYaml({ name: "night" }),
      "items.csv": itemsCsv(2, () => " [emulator:hold]"),
    });
    const child = flow.start(["apply", "flow.yaml"]);
    await waitForOutput(child, /in_progress/);
    child.kill("SIGKILL");
    await child.catch(() => undefined);
    flow.api.release();
    const [dead] = JSON.parse((await flow.run(["runs", "--json"])).stdout) as { id: string }[];

    const resumed = await flow.run(["apply", "flow.yaml"]);
    expect(resumed.exitCode).toBe(0);
    const [finisher] = JSON.parse((await flow.run(["runs", "--json"])).stdout) as { id: string }[];
    expect(resumed.stdout).toContain(`finished what run ${dead!.id} left unfinished`);

    const table = (await flow.run(["runs"])).stdout;
    const row = table.split("\n").find((line) => line.startsWith(dead!.id))!;
    expect(row).toContain(`died; finished by run ${finisher!.id}`);
    expect(row).not.toContain("apply again");
    const status = (await flow.run(["status", dead!.id])).stdout;
    expect(status).toContain(`: died; finished by run ${finisher!.id}`);
    expect(status).toContain(`the steps it left unfinished were finished by run ${finisher!.id}`);
    const json = JSON.parse((await flow.run(["status", dead!.id, "--json"])).stdout) as {
      run: { finishedByRun?: string };
    };
    expect(json.run.finishedByRun).toBe(finisher!.id);
  });
});

describe("runflow status", () => {
  test("says what failed and why, where the outputs are, and the command that retries it", async () => {
    const flow = await project(FAILING);
    await flow.run(["apply", "flow.yaml", "--quiet"]);

    const status = await flow.run(["status"]);
    expect(status.exitCode).toBe(0);
    const text = status.stdout;
    expect(text).toMatch(/^run (\S+) \(apply of night, flow\.yaml\): failed in /);
    expect(text).toContain("steps: ");
    expect(text).toContain("clip/item-2/animate failed: GPU out of memory");
    expect(text).toMatch(/clip\/item-2\/restyle blocked: not run: clip\/item-2\/animate failed/);
    const runId = /^run (\S+)/.exec(text)![1]!;
    expect(text).toContain(`clip/item-1/restyle video: outputs/night/item-1/.runs/${runId}/restyle.mp4`);
    expect(text).toContain(`to retry: runflow retry ${runId}`);

    const json = JSON.parse((await flow.run(["status", "--json"])).stdout) as {
      run: { id: string };
      counts: Record<string, number>;
      problems: { address: string; state: string; error: string }[];
    };
    expect(json.run.id).toBe(runId);
    expect(json.counts).toEqual({ succeeded: 4, failed: 1, blocked: 1 });
    expect(json.problems.map((p) => `${p.address} ${p.state}`).sort()).toEqual([
      "clip/item-2/animate failed",
      "clip/item-2/restyle blocked",
    ]);
  });

  test("refuses an unknown run id with a clear message and exit 2", async () => {
    const flow = await project(FAILING);
    await flow.run(["apply", "flow.yaml", "--quiet"]);
    const status = await flow.run(["status", "no-such-run"]);
    expect(status.exitCode).toBe(2);
    expect(status.stderr).toMatch(/^error: .*no-such-run/);
  });

  test("lists the outputs in plan order, not the order they finished in, and says how many more there are", async () => {
    const oneStep = `version: 1
name: many
concurrency: 60
defaults:
  poll: { interval: 25ms, max_interval: 100ms }
jobs:
  clip:
    for_each: items.csv
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "{{API}}/media/image.png?w=640&h=480"
`;
    // item-1 is held until the 52 others have finished: it finishes last, and is first in the plan.
    const flow = await project({
      "flow.yaml": oneStep,
      "items.csv": itemsCsv(53, (i) => (i === 1 ? " [emulator:hold]" : "")),
    });
    const child = flow.start(["apply", "flow.yaml", "--quiet"]);
    await until("52 requests finished", () => flow.api.state().requests.succeeded === 52);
    flow.api.release();
    expect((await child).exitCode).toBe(0);

    const text = (await flow.run(["status"])).stdout;
    const listed = text
      .split("\n")
      .filter((line) => /^ {2}clip\/item-\d+\/animate video: /.test(line))
      .map((line) => /item-(\d+)/.exec(line)![1]);
    expect(listed).toEqual(Array.from({ length: 50 }, (_, i) => String(i + 1)));
    expect(text).toContain("outputs (53):");
    expect(text).toContain("  … and 3 more (--json lists them all)");
  });
});
