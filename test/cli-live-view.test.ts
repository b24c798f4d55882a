/**
 * The live view as a person at a terminal sees it: the built CLI runs in a real pseudo-terminal
 * (a tmux pane of a fixed size), and the test reads the screen with `tmux capture-pane`
 * mid-run and after the end.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project, TOKEN, type Project } from "./apply-harness.js";
import { CLI_ENTRY } from "./helpers/spawn-cli.js";

const ROWS = 14;
const COLUMNS = 100;
const socket = `runflow-test-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
}

afterEach(() => {
  try {
    tmux("kill-server");
  } catch {
    // No server was started.
  }
});

/** The visible screen, one string per row, trailing blanks removed (the view draws no-break spaces). */
function screen(): string[] {
  return tmux("capture-pane", "-p", "-t", "view")
    .replaceAll("\u00a0", " ")
    .split("\n")
    .map((line) => line.trimEnd());
}

async function waitForScreen(what: string, predicate: (rows: string[]) => boolean): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  let rows = screen();
  while (!predicate(rows)) {
    if (Date.now() > deadline) throw new Error(`the screen never showed ${what}:\n${rows.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    rows = screen();
  }
  return rows;
}

/** Runs `runflow apply flow.yaml` in the project, in a fresh pane; `EXIT=N` is printed after it. */
function applyInPane(flow: Project): void {
  const script = path.join(flow.dir, "run.sh");
  writeFileSync(
    script,
    [
      `export RUNCOMFY_API_TOKEN='${TOKEN}' RUNCOMFY_BASE_URL='${flow.api.url}'`,
      "unset RUNFLOW_STATE NO_COLOR FORCE_COLOR CI",
      `cd '${flow.dir}'`,
      `'${process.execPath}' '${CLI_ENTRY}' apply flow.yaml`,
      'echo "EXIT=$?"',
      "sleep 600",
    ].join("\n"),
  );
  tmux("new-session", "-d", "-s", "view", "-x", String(COLUMNS), "-y", String(ROWS), `sh '${script}'`);
}

describe("runflow apply on a terminal", () => {
  test("draws a live view that fits the terminal, then leaves the last frame and the summary", async () => {
    // 24 jobs at concurrency 12 on a 14-row terminal: more jobs are active than fit. The first
    // steps are held in progress until the test has read the screen mid-run, however slow.
    const flow = await project({
      "flow.yaml": chainYaml({ name: "live", concurrency: 12 }),
      "items.csv": itemsCsv(24, () => " [emulator:hold=mid]"),
    });
    applyInPane(flow);

    const mid = await waitForScreen("twelve steps in progress", (rows) =>
      rows.some((row) => /\b12 running\b/.test(row)),
    );
    expect(flow.api.release("mid")).toBe(12);
    // The header: workflow, run id, elapsed time and the counts by state, at the top.
    expect(mid[0]).toMatch(/live · run \S+ · .*elapsed/);
    expect(mid[1]).toMatch(
      /\d+ queued · \d+ submitted · \d+ running · \d+ succeeded · \d+ reused · \d+ failed/,
    );
    // Jobs with each step's state; more active jobs than rows, so the rest are counted.
    expect(mid.some((row) => /clip\/item-\d+\s+animate: in_progress \d+:\d\d/.test(row))).toBe(true);
    expect(mid.some((row) => /… and \d+ more/.test(row))).toBe(true);
    // Drawn in place: the header is on the screen once, never scrolled into repeats.
    expect(mid.filter((row) => row.includes("live · run ")).length).toBe(1);
    expect(mid.join("\n")).not.toContain("\u001b");

    const end = await waitForScreen("the exit code", (rows) => rows.some((row) => row.startsWith("EXIT=")));
    const text = end.join("\n");
    expect(text).toContain("EXIT=0");
    // The last frame stays (finished, with the final counts), then the summary below it.
    expect(text).toMatch(/live · run \S+ · succeeded after/);
    expect(text).toMatch(/48 succeeded · 0 reused · 0 failed/);
    expect(text).toMatch(/run \S+ succeeded in .* — 48 steps: 48 succeeded/);
    expect(text).toContain("outputs: outputs/live");
    expect(text).not.toMatch(/in_progress|in_queue/);
  }, 60_000);

  test("draws nothing for a workflow refused before it runs: the error alone, exit 2", async () => {
    const flow = await project({
      "flow.yaml": chainYaml({ name: "live" }).replace('ratio: "1280:720"', 'ratio: "1920:1080"'),
      "items.csv": itemsCsv(2),
    });
    applyInPane(flow);
    const text = (
      await waitForScreen("the exit code", (rows) => rows.some((row) => row.startsWith("EXIT=")))
    ).join("\n");
    expect(text).toContain("EXIT=2");
    expect(text).toMatch(/flow\.yaml:\d+:\d+: .*ratio/);
    expect(text).not.toMatch(/starting…|\d+ queued ·/);
    expect(flow.api.submissions().total).toBe(0);
  }, 60_000);
});
