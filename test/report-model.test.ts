import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  buildRunReport,
  checkRecordedFile,
  type BuildReportOptions,
  renderReportJson,
  renderReportMarkdown,
  type RunReport,
} from "../src/report/index.js";
import { openSqliteStore } from "../src/store/index.js";
import { RUN_ID, seedReportRun, T0, type SeededRun } from "./report-fixture.js";

const GENERATED_AT = T0 + 3_600_000;

function reportOf(
  seeded: SeededRun,
  fileExists?: (file: string) => boolean,
  checkFile?: BuildReportOptions["checkFile"],
): RunReport {
  const store = openSqliteStore(seeded.statePath, { readonly: true });
  try {
    const run = store.getRun(RUN_ID);
    if (!run) throw new Error("seeded run missing");
    return buildRunReport(run, store.getSteps(RUN_ID), store.getOutputs(RUN_ID), {
      reportDir: path.join(seeded.root, "reports"),
      now: GENERATED_AT,
      attempts: store.getAttempts(RUN_ID),
      fileExists,
      checkFile,
    });
  } finally {
    store.close();
  }
}

/** The temp folder is the only thing that differs between runs. */
function normalized(text: string, root: string): string {
  return text.split(root).join("<root>");
}

describe("buildRunReport", () => {
  it("groups the steps of a real run by job instance, in plan order, with each job's outcome", () => {
    const report = reportOf(seedReportRun());
    expect(
      report.jobs.map((job) => [job.key, job.status, job.steps.map((s) => `${s.stepId}:${s.state}`)]),
    ).toEqual([
      ["teaser/001", "succeeded", ["animate:reused", "restyle:succeeded"]],
      ["teaser/002", "failed", ["animate:succeeded", "restyle:failed"]],
      ["teaser/003", "failed", ["animate:unknown", "restyle:blocked"]],
      ["poster/001", "succeeded", ["still:succeeded", "frame:succeeded"]],
    ]);
    expect(report.counts).toEqual({
      steps: 8,
      jobs: 4,
      failedJobs: 2,
      byGroup: { queued: 0, submitted: 0, running: 0, done: 4, reused: 1, failed: 3 },
      byState: { reused: 1, succeeded: 4, failed: 1, unknown: 1, blocked: 1 },
    });
    // unknown steps are not retried without --resubmit-unknown: two of the three failures are.
    expect(report.retry).toEqual({ command: `runflow retry ${RUN_ID}`, steps: 2 });
    expect(report.unknownSteps).toBe(1);
    expect(report.failed.map((step) => step.address)).toEqual([
      "teaser/002/restyle",
      "teaser/003/animate",
      "teaser/003/restyle",
    ]);
  });

  it("gives each step its attempts, timings, request id and error", () => {
    const report = reportOf(seedReportRun());
    const restyle = report.jobs[1]?.steps[1];
    expect(restyle).toMatchObject({
      address: "teaser/002/restyle",
      attempts: 3,
      requestId: "req-restyle-002c",
      startedAt: T0 + 63_000,
      finishedAt: T0 + 300_000,
      durationMs: 237_000,
      group: "failed",
    });
    expect(restyle?.error).toMatch(/^content policy/);
    expect(report.jobs[0]?.steps[0]?.reusedFromRun).toBe("r-20250228-0200-ff00");
    // A step with no start time of its own started with its first attempt.
    expect(report.jobs[2]?.steps[0]).toMatchObject({
      startedAt: T0 + 3_000,
      durationMs: 30_000,
      attempts: 1,
    });
  });

  it("reads prompts, source media and parameters from a step's input", () => {
    const report = reportOf(seedReportRun());
    const animate = report.jobs[0]?.steps[0];
    expect(animate?.prompts).toEqual([
      { name: "prompt", text: "A paper boat drifts down a rain-soaked street" },
    ]);
    expect(animate?.inputs).toEqual([
      expect.objectContaining({
        name: "image_url",
        kind: "image",
        url: "https://images.example.com/stills/001.png",
        href: "https://images.example.com/stills/001.png",
        local: false,
      }),
    ]);
    expect(animate?.parameters).toEqual([{ name: "prompt_optimizer", value: "true" }]);
  });

  it("shows a chained step's source video from the file the earlier step downloaded, relative to the report", () => {
    const report = reportOf(seedReportRun());
    const restyle = report.jobs[0]?.steps[1];
    expect(restyle?.inputs[0]).toMatchObject({
      name: "video_url",
      kind: "video",
      local: true,
      href: "../outputs/teasers/001/animate.mp4",
    });
    expect(restyle?.outputs[0]).toMatchObject({
      name: "video",
      kind: "video",
      local: true,
      href: "../outputs/teasers/001/restyle.mp4",
      bytes: 2015,
    });
  });

  it("shows a run step's command and output file, never its environment", () => {
    const report = reportOf(seedReportRun());
    const frame = report.jobs[3]?.steps[1];
    expect(frame?.command).toEqual(["ffmpeg", "-i", "still.png", "framed.png"]);
    expect(frame?.outputs[0]).toMatchObject({
      kind: "image",
      url: undefined,
      href: "../outputs/posters/001/framed.png",
    });
    const json = renderReportJson(report);
    expect(json).not.toContain("SECRET_THING");
    expect(json).not.toContain("hunter2");
  });

  it("marks a downloaded file that is no longer on disk as missing instead of linking to it", () => {
    const seeded = seedReportRun();
    const gone = path.join(seeded.root, "outputs", "teasers", "001", "restyle.mp4");
    rmSync(gone);
    const report = reportOf(seeded, (file) => file !== gone);
    expect(report.jobs[0]?.steps[1]?.outputs[0]).toMatchObject({ missing: true, local: false, path: gone });
  });

  it("checks each recorded file's sha256: the run's own files are linked", () => {
    const report = reportOf(seedReportRun(), undefined, checkRecordedFile);
    const outputs = report.jobs.flatMap((job) => job.steps.flatMap((step) => step.outputs));
    expect(outputs.length).toBeGreaterThan(0);
    for (const output of outputs)
      expect(output).toMatchObject({ local: true, missing: false, changed: false });
  });

  it("shows another file at a recorded path (a later run's, an edit) as changed, never as this run's output", () => {
    const seeded = seedReportRun();
    const replaced = path.join(seeded.root, "outputs", "teasers", "001", "restyle.mp4");
    const bytes = readFileSync(replaced);
    const last = bytes.length - 1;
    bytes.writeUInt8(bytes.readUInt8(last) ^ 0xff, last); // same size, other content: only the sha256 tells
    writeFileSync(replaced, bytes);
    const report = reportOf(seeded, undefined, checkRecordedFile);
    const output = report.jobs[0]?.steps[1]?.outputs[0];
    expect(output).toMatchObject({ changed: true, missing: false, local: false, path: replaced });
    // Shown from where the run got it, not from the file that replaced it.
    expect(output?.href).toBe(output?.url);
    expect(output?.href).toMatch(/^https?:/);
    expect(renderReportMarkdown(report)).toContain("video: file changed since this run (");
    // The other files of the run are untouched and still shown from disk.
    expect(report.jobs[0]?.steps[1]?.inputs[0]).toMatchObject({ local: true });
    expect(report.jobs[0]?.steps[0]?.outputs[0]).toMatchObject({ local: true, changed: false });
  });

  it("names the run that made each output: this run, or the run a reused step took it from", () => {
    const report = reportOf(seedReportRun());
    const [animate, restyle] = report.jobs[0]!.steps;
    expect(animate?.outputs[0]?.producedBy).toBe("r-20250228-0200-ff00");
    expect(restyle?.outputs[0]?.producedBy).toBe(RUN_ID);
    expect(restyle?.inputs[0]?.producedBy).toBe("r-20250228-0200-ff00");
  });
});

describe("report renderings", () => {
  it("renders Markdown as in the snapshot", async () => {
    const seeded = seedReportRun();
    await expect(normalized(renderReportMarkdown(reportOf(seeded)), seeded.root)).toMatchFileSnapshot(
      "__snapshots__/report-run.md",
    );
  });

  it("renders JSON as in the snapshot", async () => {
    const seeded = seedReportRun();
    await expect(normalized(renderReportJson(reportOf(seeded)), seeded.root)).toMatchFileSnapshot(
      "__snapshots__/report-run.json",
    );
  });

  it("escapes Markdown and HTML in user data so a prompt cannot add links, tags or table cells", () => {
    const markdown = renderReportMarkdown(reportOf(seedReportRun()));
    expect(markdown).toContain(
      '- prompt: A cat &lt;script&gt;alert("pwned")&lt;/script&gt; &amp; a \\| pipe, \\*stars\\* and \\[a\\](javascript:alert(1))',
    );
    expect(markdown).not.toContain("<script>");
  });
});
