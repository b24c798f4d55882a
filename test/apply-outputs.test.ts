/**
 * Where a run's files go (docs/decisions.md, "Outputs"): each run into its own folder, the
 * instance's folder a latest view of them, and each run's records and report true to its
 * own files, with the real CLI against the emulator.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { RunReport } from "../src/report/index.js";
import { itemsCsv, ndjson, project, TOKEN, type Project } from "./apply-harness.js";

/** animate (Hailuo) → restyle (Aleph) → poster, a local program that reads restyle's file. */
function nightlyYaml(options: { posterNeeds?: string } = {}): string {
  // The poster is LOOK's text followed by the restyled video: it shows which file it read.
  // With `posterNeeds`, it fails while that file (relative to its working folder) is absent.
  const gate = options.posterNeeds
    ? `if (!fs.existsSync(${JSON.stringify(options.posterNeeds)})) process.exit(3); `
    : "";
  const script = `const fs = require('fs'); ${gate}fs.writeFileSync('poster.bin', Buffer.concat([Buffer.from(process.env.LOOK), fs.readFileSync(process.argv[1])]))`;
  return `version: 1
name: nightly
defaults:
  retry: { attempts: 1 }
  poll: { interval: 25ms, max_interval: 250ms }
vars:
  media: "{{API}}"
  look: warm
jobs:
  shot:
    for_each: items.csv
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ vars.media }}/media/image.png?w=640&h=480"
      - id: restyle
        model: runwayml/runway-aleph/video-to-video
        input:
          prompt: "hand-painted watercolor"
          video_url: "\${{ steps.animate.output.video }}"
          ratio: "1280:720"
      - id: poster
        run: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(script)}, "\${{ steps.restyle.files.video }}"]
        env: { LOOK: "\${{ vars.look }}" }
        outputs: { poster: poster.bin }
`;
}

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

async function applied(p: Project, args: string[], exitCode: number): Promise<string> {
  const result = await p.run(["apply", "nightly.yaml", "--json", ...args]);
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(exitCode);
  return String(ndjson(result.stdout)[0]?.runId);
}

async function reportOf(p: Project, runId: string): Promise<RunReport> {
  const result = await p.run(["report", runId, "--format", "json", "--out", "-"]);
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout) as RunReport;
}

const instance = (p: Project, key: string) => path.join(p.dir, "outputs", "nightly", key);
const runFolder = (p: Project, key: string, runId: string) => path.join(instance(p, key), ".runs", runId);

describe("outputs of different runs", () => {
  test("a --fresh run that fails leaves no older file in the latest view, and the older run's records and report keep its own files", async () => {
    const p = await project({
      "nightly.yaml": nightlyYaml(),
      "items.csv": itemsCsv(2, (i) => ` [emulator:output-bytes=${3000 + i}]`),
    });
    const first = await applied(p, [], 0);
    // Tonight: shot item-1's animate fails, item-2 makes a different video.
    writeFileSync(
      path.join(p.dir, "items.csv"),
      itemsCsv(2, (i) =>
        i === 1 ? " [emulator:fail=GPU exploded]" : ` [emulator:output-bytes=${4000 + i}]`,
      ),
    );
    const second = await applied(p, ["--fresh"], 1);

    // The failed shot's folder no longer shows last night's files as tonight's results...
    for (const file of ["animate.mp4", "restyle.mp4", "poster.bin"]) {
      expect(existsSync(path.join(instance(p, "item-1"), file))).toBe(false);
      // ...which are still in their own run's folder.
      expect(existsSync(path.join(runFolder(p, "item-1", first), file))).toBe(true);
    }
    const record = JSON.parse(
      readFileSync(path.join(instance(p, "item-1"), ".runs", "animate.latest.json"), "utf8"),
    ) as unknown;
    expect(record).toEqual({
      step: "animate",
      run: second,
      state: "failed",
      files: [],
      lastSucceeded: { run: first, files: [`.runs/${first}/animate.mp4`] },
    });
    expect(
      JSON.parse(readFileSync(path.join(instance(p, "item-1"), ".runs", "poster.latest.json"), "utf8")),
    ).toMatchObject({ run: second, state: "blocked", files: [] });

    // The shot that succeeded shows tonight's files.
    const store = p.store();
    const tonight = store.getOutputs(second, "shot/item-2/animate")[0]!;
    expect(tonight.path).toBe(path.join(runFolder(p, "item-2", second), "animate.mp4"));
    expect(tonight.bytes).toBe(4002);
    expect(sha256(path.join(instance(p, "item-2"), "animate.mp4"))).toBe(tonight.sha256);

    // Last night's run still has exactly the files it recorded, where it recorded them.
    const lastNight = store.getOutputs(first);
    expect(lastNight).toHaveLength(6);
    for (const output of lastNight) {
      expect(path.dirname(output.path!)).toBe(runFolder(p, output.address.split("/")[1]!, first));
      expect(sha256(output.path!)).toBe(output.sha256);
    }
    const report = await reportOf(p, first);
    const outputs = report.jobs.flatMap((job) => job.steps.flatMap((step) => step.outputs));
    expect(outputs).toHaveLength(6);
    for (const output of outputs) {
      expect(output).toMatchObject({ local: true, missing: false, changed: false, producedBy: first });
      expect(output.href).toContain(`/.runs/${first}/`);
    }

    // status names each file in its run's folder.
    const status = await p.run(["status", first, "--json"]);
    const listed = (JSON.parse(status.stdout) as { outputs: { path: string; producedBy: string }[] }).outputs;
    expect(listed).toHaveLength(6);
    for (const output of listed) {
      expect(output.path).toContain(`${path.sep}.runs${path.sep}${first}${path.sep}`);
      expect(output.producedBy).toBe(first);
    }
  });

  test("a run stopped by a refused token takes nothing out of the latest view", async () => {
    const p = await project(
      { "nightly.yaml": nightlyYaml(), "items.csv": itemsCsv(1, () => " [emulator:output-bytes=3200]") },
      { token: TOKEN },
    );
    const first = await applied(p, [], 0);
    const refused = await p.run(["apply", "nightly.yaml", "--fresh"], {
      env: { RUNCOMFY_API_TOKEN: "rf-wrong-token-31d9e0a7c5b4" },
    });
    expect(refused.exitCode).toBe(4);
    // The first step failed on the token and the rest were cancelled or blocked: none of
    // that says anything about last night's files, which the view still shows.
    for (const file of ["animate.mp4", "restyle.mp4", "poster.bin"]) {
      expect(readFileSync(path.join(instance(p, "item-1"), file))).toEqual(
        readFileSync(path.join(runFolder(p, "item-1", first), file)),
      );
    }
    expect(
      JSON.parse(readFileSync(path.join(instance(p, "item-1"), ".runs", "animate.latest.json"), "utf8")),
    ).toMatchObject({ run: first, state: "succeeded", files: ["animate.mp4"] });
  });

  test("retry runs a failed run step in the retry's own folder, over the retry's links to the files it reads", async () => {
    // The run step's folder is outputs/nightly/item-1/.runs/RUN: five levels below the project.
    const p = await project({
      "nightly.yaml": nightlyYaml({ posterNeeds: "../../../../../poster-ok" }),
      "items.csv": itemsCsv(1, () => " [emulator:output-bytes=3300]"),
    });
    const first = await applied(p, [], 1);
    expect(existsSync(path.join(instance(p, "item-1"), "poster.bin"))).toBe(false);
    writeFileSync(path.join(p.dir, "poster-ok"), "");
    const retried = await p.run(["retry", "--json"]);
    expect(retried.exitCode).toBe(0);
    const retry = String(ndjson(retried.stdout)[0]?.runId);
    expect(retry).not.toBe(first);

    const store = p.store();
    // restyle is taken over as it was, though its input read animate, which the retry does
    // not run: it is in the retry's plan only as what the poster reads.
    const restyle = store.getOutputs(retry, "shot/item-1/restyle")[0]!;
    expect(store.getStep(retry, "shot/item-1/restyle")).toMatchObject({
      state: "reused",
      reusedFromRun: first,
      input: store.getStep(first, "shot/item-1/restyle")!.input,
    });
    expect(restyle.path).toBe(path.join(runFolder(p, "item-1", retry), "restyle.mp4"));
    const poster = store.getStep(retry, "shot/item-1/poster")!;
    expect(poster.state).toBe("succeeded");
    expect(poster.input).toMatchObject({ cwd: runFolder(p, "item-1", retry) });
    expect((poster.input as { argv: string[] }).argv.at(-1)).toBe(restyle.path);
    const posterFile = path.join(runFolder(p, "item-1", retry), "poster.bin");
    expect(store.getOutputs(retry, "shot/item-1/poster")[0]?.path).toBe(posterFile);
    expect(readFileSync(path.join(instance(p, "item-1"), "poster.bin"))).toEqual(readFileSync(posterFile));
  });

  test("a reused step's files are linked into the new run's folder, and a run step reads that run's own files", async () => {
    const p = await project({
      "nightly.yaml": nightlyYaml(),
      "items.csv": itemsCsv(1, () => " [emulator:output-bytes=3100]"),
    });
    const first = await applied(p, [], 0);
    // Only the poster changes: the two model steps are reused, the poster runs again.
    const second = await applied(p, ["--var", "look=cold"], 0);
    expect(p.api.submissions().total).toBe(2);

    const store = p.store();
    const restyleBefore = store.getOutputs(first, "shot/item-1/restyle")[0]!;
    const restyle = store.getOutputs(second, "shot/item-1/restyle")[0]!;
    expect(store.getStep(second, "shot/item-1/restyle")).toMatchObject({
      state: "reused",
      reusedFromRun: first,
    });
    expect(restyle.path).toBe(path.join(runFolder(p, "item-1", second), "restyle.mp4"));
    expect(restyle.sha256).toBe(restyleBefore.sha256);
    // A link, not a copy of the bytes.
    expect(statSync(restyle.path!).ino).toBe(statSync(restyleBefore.path!).ino);

    // The poster ran in the new run's folder over the new run's own restyle file.
    const poster = store.getStep(second, "shot/item-1/poster")!;
    expect(poster.state).toBe("succeeded");
    expect((poster.input as { argv: string[] }).argv.at(-1)).toBe(restyle.path);
    const posterFile = store.getOutputs(second, "shot/item-1/poster")[0]!.path!;
    expect(posterFile).toBe(path.join(runFolder(p, "item-1", second), "poster.bin"));
    expect(readFileSync(posterFile)).toEqual(
      Buffer.concat([Buffer.from("cold"), readFileSync(restyle.path!)]),
    );
    // The latest view shows the new poster; the first run's poster is untouched.
    expect(readFileSync(path.join(instance(p, "item-1"), "poster.bin"))).toEqual(readFileSync(posterFile));
    expect(
      readFileSync(path.join(runFolder(p, "item-1", first), "poster.bin"))
        .subarray(0, 4)
        .toString(),
    ).toBe("warm");

    // status says which run made the files a reused step took over.
    const status = await p.run(["status", second]);
    expect(status.stdout).toContain(
      `shot/item-1/restyle video: outputs/nightly/item-1/.runs/${second}/restyle.mp4 (made by run ${first})`,
    );

    // Run again unchanged: the poster is the same step over the same files in another
    // run's folder, so it is reused too.
    const third = await applied(p, ["--var", "look=cold"], 0);
    expect(store.getStep(third, "shot/item-1/poster")).toMatchObject({
      state: "reused",
      reusedFromRun: second,
    });
    expect(existsSync(path.join(runFolder(p, "item-1", third), "poster.bin"))).toBe(true);
  });
});
