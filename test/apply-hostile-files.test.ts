/**
 * A hostile world seen by `runflow apply` end to end (issue 16): the API's answers, the file
 * host and item data never decide where runflow writes, nor get a damaged file recorded as
 * complete. The built CLI runs against the emulator's fault modes.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { filesUnder, ndjson, project, type Project } from "./apply-harness.js";
import { mountSmallDisk, smallDiskUnavailable, type SmallDisk } from "./helpers/small-disk.js";

const disks: SmallDisk[] = [];
const noSmallDisk = smallDiskUnavailable();
// After the harness's own cleanup (registered first, so run last): the CLI has exited by then.
afterEach(() => {
  for (const disk of disks.splice(0)) disk.unmount();
});

/** One Hailuo step over items.csv. */
function oneStepYaml(outputs?: string): string {
  return `version: 1
name: hostile
${outputs === undefined ? "" : `outputs: "${outputs}"\n`}defaults:
  retry: { attempts: 1 }
  poll: { interval: 25ms, max_interval: 250ms }
vars:
  media: "{{API}}"
jobs:
  clip:
    for_each: items.csv
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ vars.media }}/media/image.png?w=640&h=480"
`;
}

const ITEMS = "id,prompt\nitem-1,a paper boat\n";

/** The step's error as `apply` prints it. */
function stepError(stdout: string): string | undefined {
  return /clip\/item-1\/animate failed: (.*)/.exec(stdout)?.[1];
}

/** Resolves once `check` holds; checks again on every turn of a short timer (a condition, not a duration). */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The parts of output downloads (not of captured input stills, in `.inputs/`). */
function partsUnder(p: Project): string[] {
  const outputs = path.join(p.dir, "outputs");
  return existsSync(outputs)
    ? outputFilesUnder(outputs).filter((file) => /\.part-[0-9a-f]{12}$/.test(file))
    : [];
}

/** The output files under `dir`: without the input stills the run captured (`.inputs/`), which are no output. */
function outputFilesUnder(dir: string): string[] {
  return filesUnder(dir).filter((file) => !file.split(path.sep).includes(".inputs"));
}

describe("output file names from the API's answer", () => {
  test("keys that climb out of the outputs folder or name absolute paths are reduced to safe names inside the step's folder", async () => {
    const p = await project({ "hostile.yaml": oneStepYaml(), "items.csv": ITEMS });
    p.api.configure({
      faults: [
        {
          endpoint: "result",
          kind: "output",
          // Every value gets the same file name (`animate.mp4`), so each is named by its key.
          output: {
            video: "{url}",
            "../../../../victim/app": "{url}",
            "/tmp/runflow-hostile-absolute": "{url}",
            "..\\..\\windows": "{url}",
            "..": "{url}",
            ["__proto__"]: "{url}",
          },
        },
      ],
    });
    const result = await p.run(["apply", "hostile.yaml", "--json"]);
    expect(result.stderr).toBe("");
    expect(ndjson(result.stdout).at(-1)).toMatchObject({ event: "run_finished", exitCode: 0 });

    const runId = String(ndjson(result.stdout)[0]?.runId);
    const instanceFolder = path.join(p.dir, "outputs", "hostile", "item-1");
    // The step's folder is the run's own; the instance's folder shows the same files.
    const stepFolder = path.join(instanceFolder, ".runs", runId);
    // Nothing outside the instance's folder but the project's own files and state.
    const outside = filesUnder(p.dir).filter(
      (file) => !file.startsWith(instanceFolder + path.sep) && !file.startsWith(path.join(p.dir, "state")),
    );
    expect(outside.map((file) => path.relative(p.dir, file)).sort()).toEqual(["hostile.yaml", "items.csv"]);
    expect(existsSync(path.join(p.dir, "victim"))).toBe(false);
    expect(existsSync("/tmp/runflow-hostile-absolute.mp4")).toBe(false);
    const names = [
      "animate-output.mp4",
      "animate-proto.mp4",
      "animate-tmp_runflow-hostile-absolute.mp4",
      "animate-victim_app.mp4",
      "animate-video.mp4",
      "animate-windows.mp4",
    ];
    expect(readdirSync(stepFolder).sort()).toEqual([".inputs", ...names]);
    expect(readdirSync(instanceFolder).sort()).toEqual([".runs", ...names]);

    const rows = p.store().getOutputs(runId);
    expect(rows).toHaveLength(6);
    for (const row of rows) {
      expect(path.dirname(row.path!)).toBe(stepFolder);
      expect(row.bytes).toBe(2015);
    }
  });
});

describe("downloads from a hostile file host", () => {
  test("an endless output is cut at RUNFLOW_MAX_DOWNLOAD_MB and the step fails, keeping nothing", async () => {
    const p = await project({ "hostile.yaml": oneStepYaml(), "items.csv": ITEMS });
    p.api.configure({ faults: [{ endpoint: "files", kind: "endless" }] });
    const result = await p.run(["apply", "hostile.yaml"], { env: { RUNFLOW_MAX_DOWNLOAD_MB: "1" } });
    expect(result.exitCode).toBe(1);
    expect(stepError(result.stdout)).toMatch(/the file is larger than the 1000000 bytes allowed/);
    expect(outputFilesUnder(path.join(p.dir, "outputs"))).toEqual([]);
  });

  test("a RUNFLOW_MAX_DOWNLOAD_MB that is not a size is refused before anything is submitted", async () => {
    const p = await project({ "hostile.yaml": oneStepYaml(), "items.csv": ITEMS });
    const result = await p.run(["apply", "hostile.yaml"], { env: { RUNFLOW_MAX_DOWNLOAD_MB: "lots" } });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(
      "Expected `RUNFLOW_MAX_DOWNLOAD_MB` to be a number of megabytes above 0, got `lots`",
    );
    expect(p.api.submissions().total).toBe(0);
  });

  test("an HTML page where the video should be fails the step instead of becoming animate.mp4", async () => {
    const p = await project({ "hostile.yaml": oneStepYaml(), "items.csv": ITEMS });
    p.api.configure({ faults: [{ endpoint: "files", kind: "html-page" }] });
    const result = await p.run(["apply", "hostile.yaml"]);
    expect(result.exitCode).toBe(1);
    expect(stepError(result.stdout)).toMatch(/answered text\/html \(\d+ bytes\), not a video/);
    expect(outputFilesUnder(path.join(p.dir, "outputs"))).toEqual([]);
    // Once the host answers right, the next apply collects the same request without paying again.
    p.api.configure({ faults: [] });
    const second = await p.run(["apply", "hostile.yaml"]);
    expect(second.exitCode).toBe(0);
    expect(p.api.submissions().total).toBe(1);
  });

  test("a full disk fails the step with `no space left`, and no truncated file is recorded", async (context) => {
    if (noSmallDisk) context.skip(noSmallDisk);
    const disk = mountSmallDisk(16);
    disks.push(disk);
    const p = await project({
      "hostile.yaml": oneStepYaml(`${disk.dir}/\${{ job.key }}`),
      "items.csv": "id,prompt\nitem-1,a paper boat [emulator:output-bytes=20000]\n",
    });
    const result = await p.run(["apply", "hostile.yaml", "--json"]);
    expect(result.exitCode).toBe(1);
    const failed = ndjson(result.stdout).find((event) => event.event === "step" && event.state === "failed");
    expect(String(failed?.error)).toMatch(
      new RegExp(
        `^no space left on the disk holding ${disk.dir}/item-1/\\.runs/\\S+ \\(request \\S+ succeeded`,
      ),
    );
    expect(outputFilesUnder(disk.dir)).toEqual([]);
    const runId = String(ndjson(result.stdout)[0]?.runId);
    expect(p.store().getOutputs(runId)).toEqual([]);
  });
});

describe("taking over an earlier result on a full disk", () => {
  test("fails the step without submitting it again", async (context) => {
    if (noSmallDisk) context.skip(noSmallDisk);
    const disk = mountSmallDisk(16);
    disks.push(disk);
    const p = await project({
      "hostile.yaml": oneStepYaml(`${disk.dir}/\${{ job.key }}`),
      "items.csv": "id,prompt\nitem-1,a paper boat [emulator:output-bytes=3000]\n",
    });
    const first = await p.run(["apply", "hostile.yaml", "--json"]);
    expect(first.exitCode).toBe(0);
    const firstRun = String(ndjson(first.stdout)[0]?.runId);
    // The file is lost, and the disk is full by the time the next apply wants it back.
    rmSync(path.join(disk.dir, "item-1", ".runs", firstRun, "animate.mp4"));
    rmSync(path.join(disk.dir, "item-1", "animate.mp4"));
    try {
      writeFileSync(path.join(disk.dir, "filler"), Buffer.alloc(64 * 1024));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
    }
    const second = await p.run(["apply", "hostile.yaml"]);
    expect(second.exitCode).toBe(1);
    expect(stepError(second.stdout)).toMatch(
      /^no space left on the disk holding .*item-1\/\.runs\/\S+; nothing was submitted: `runflow apply` again takes over the result of run \S+ once the disk can hold it/,
    );
    expect(p.api.submissions().total).toBe(1);
  });
});

describe("parts left by a SIGKILL", () => {
  test("are removed when the step is next collected", async () => {
    const p = await project({ "hostile.yaml": oneStepYaml(), "items.csv": ITEMS });
    // The download hangs half-way, so the process is killed with its part on disk.
    p.api.configure({ faults: [{ endpoint: "files", kind: "stall" }] });
    const child = p.start(["apply", "hostile.yaml"]);
    await until(() => partsUnder(p).length === 1, "the download's part file");
    child.kill("SIGKILL");
    await child;
    expect(partsUnder(p)).toHaveLength(1);

    p.api.configure({ faults: [] });
    const second = await p.run(["apply", "hostile.yaml"]);
    expect(second.exitCode).toBe(0);
    expect(p.api.submissions().total).toBe(1);
    expect(partsUnder(p)).toEqual([]);
    expect(readdirSync(path.join(p.dir, "outputs", "hostile", "item-1")).sort()).toEqual([
      ".runs",
      "animate.mp4",
    ]);
  });
});

describe("item data and step results in paths", () => {
  test("an item value that would lead the outputs folder out is refused at validation, at its row (exit 2, nothing submitted)", async () => {
    const p = await project({
      "hostile.yaml": oneStepYaml("outputs/${{ item.folder }}"),
      "items.csv":
        "id,folder,prompt\nitem-1,cats/tabby,a cat\nitem-2,../escape,a dog\nitem-3,/tmp/runflow-item-abs,a fox\n",
    });
    const result = await p.run(["apply", "hostile.yaml"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("items.csv:3");
    expect(result.stderr).toContain(
      'item data in a path may not lead out of it: "../escape" contains `..` or `.`',
    );
    expect(result.stderr).toContain("items.csv:4");
    expect(result.stderr).toContain('"/tmp/runflow-item-abs" is an absolute path');
    expect(p.api.submissions().total).toBe(0);
    expect(existsSync(path.join(p.dir, "outputs"))).toBe(false);
  });

  test("item data may name subfolders inside the outputs folder", async () => {
    const p = await project({
      "hostile.yaml": oneStepYaml("outputs/${{ item.folder }}"),
      "items.csv": "id,folder,prompt\nitem-1,cats/tabby,a cat\n",
    });
    const result = await p.run(["apply", "hostile.yaml"]);
    expect(result.exitCode).toBe(0);
    expect(readdirSync(path.join(p.dir, "outputs", "cats", "tabby")).sort()).toEqual([
      ".runs",
      "animate.mp4",
    ]);
  });

  test("a run step's output path read from an earlier step's result cannot climb out: the step fails", async () => {
    const yaml = `version: 1
name: local
jobs:
  make:
    for_each: [{ id: one }]
    steps:
      - id: name
        run: [node, "-e", "console.log('../../../pwned')"]
      - id: note
        run: [node, "-e", "0"]
        outputs: { note: "\${{ steps.name.stdout }}.txt" }
`;
    const p = await project({ "local.yaml": yaml });
    const result = await p.run(["apply", "local.yaml"]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(
      'make/one/note failed: run: ${{ steps.name.stdout }}: a step\'s result in a path may not lead out of it: "../../../pwned" contains `..` or `.`',
    );
    expect(existsSync(path.join(p.dir, "pwned.txt"))).toBe(false);
  });
});
