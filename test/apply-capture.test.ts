/**
 * Input stills captured at run time (docs/decisions.md, "Input captures"): a model step's
 * input picture on the user's media host is downloaded into the run's folder when the step
 * is submitted, so the report shows it after the URL is gone — best effort, without the
 * token, never in the submissions' way. Real CLI against the emulator, whose `/media`
 * endpoints are the media host.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { EmulatorLogEntry } from "../src/emulator/index.js";
import type { RunReport } from "../src/report/index.js";
import { filesUnder, ndjson, project, recordedRequests, until, type Project } from "./apply-harness.js";

const SMALL = "/media/image.png?w=640&h=480";
const OTHER = "/media/image.png?w=600&h=400";
/** Above the 20 MB capture cap (the model's rules say nothing of an image's size). */
const LARGE = "/media/image.png?w=640&h=480&bytes=21000000";

/** One Hailuo step per item; each item names its input picture (a path on the media host). */
function stillsYaml(): string {
  return `version: 1
name: stills
defaults:
  retry: { attempts: 1 }
  poll: { interval: 25ms, max_interval: 250ms }
vars:
  media: "{{API}}"
jobs:
  shot:
    for_each: items.csv
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ vars.media }}\${{ item.still }}"
`;
}

function itemsCsv(items: readonly { still: string; prompt?: string }[]): string {
  const rows = items.map((item, i) => `item-${i + 1},"${item.prompt ?? `shot ${i + 1}`}",${item.still}`);
  return ["id,prompt,still", ...rows, ""].join("\n");
}

async function applied(p: Project, args: string[] = [], env: Record<string, string> = {}): Promise<string> {
  const result = await p.run(["apply", "stills.yaml", "--json", ...args], { env });
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  return String(ndjson(result.stdout)[0]?.runId);
}

async function jsonReport(p: Project, runId: string): Promise<RunReport> {
  const result = await p.run(["report", runId, "--format", "json", "--out", "-"]);
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout) as RunReport;
}

/** The media host's whole-file downloads (a probe asks for a range; a capture for the file). */
function wholeFileGets(log: readonly EmulatorLogEntry[]): EmulatorLogEntry[] {
  return log.filter((entry) => entry.endpoint === "media" && entry.method === "GET" && !entry.headers.range);
}

function inputsOf(report: RunReport) {
  return report.jobs.flatMap((job) => job.steps.flatMap((step) => step.inputs));
}

describe("input stills captured at run time", () => {
  test("stills from the media host are captured once per URL, without the token, and the reports (of the run and of one reusing it) show the copies once the host is gone", async () => {
    const p = await project({
      "stills.yaml": stillsYaml(),
      "items.csv": itemsCsv([{ still: SMALL }, { still: SMALL }, { still: OTHER }]),
    });
    const runId = await applied(p);

    // The token never went to the media host; the API got it (the log redacts its value).
    const log = p.api.requestLog();
    const media = log.filter((entry) => entry.endpoint === "media");
    expect(media.length).toBeGreaterThan(0);
    for (const entry of media) expect(entry.headers.authorization).toBeUndefined();
    expect(log.find((entry) => entry.endpoint === "submit")?.headers.authorization).toBe("[redacted]");
    // Each URL downloaded whole once: two URLs, three steps.
    const queries = wholeFileGets(log).map((entry) => new URLSearchParams(entry.query).toString());
    expect(queries.sort()).toEqual(["w=600&h=400", "w=640&h=480"].sort());

    // Tonight's run again: every step reused, nothing submitted or captured again.
    const wholeBefore = wholeFileGets(p.api.requestLog()).length;
    const again = await applied(p);
    expect(wholeFileGets(p.api.requestLog())).toHaveLength(wholeBefore);
    expect(p.store().getInputCaptures([again])).toEqual([]);

    // The bytes the host served, for comparison once it is gone.
    const served = new Map<string, Buffer>();
    for (const still of [SMALL, OTHER]) {
      served.set(
        `${p.api.url}${still}`,
        Buffer.from(await (await fetch(`${p.api.url}${still}`)).arrayBuffer()),
      );
    }
    await p.api.close();

    const html = await p.run(["report", runId, "--out", "night.html"]);
    expect(html.exitCode).toBe(0);
    const page = readFileSync(path.join(p.dir, "night.html"), "utf8");
    const report = await jsonReport(p, runId);
    const inputs = inputsOf(report);
    expect(inputs).toHaveLength(3);
    const paths = new Set<string>();
    for (const input of inputs) {
      expect(input).toMatchObject({ captured: true, local: true, missing: false, producedBy: runId });
      const file = input.path as string;
      paths.add(file);
      // In a run's folder of an instance, apart from its outputs.
      expect(file).toContain(`${path.sep}.runs${path.sep}${runId}${path.sep}.inputs${path.sep}`);
      expect(readFileSync(file).equals(served.get(input.url as string) as Buffer)).toBe(true);
      // The page links the copy, relative to itself, and names where it came from.
      expect(page).toContain(`href="${input.href}"`);
    }
    expect(paths.size).toBe(2);
    expect(page).toContain("captured from");
    expect(page).not.toContain("remote, not captured");
    // No picture of the page comes from the network.
    expect(page).not.toMatch(/src="https?:/);
    for (const url of served.keys()) expect(page).not.toContain(`src="${url.replaceAll("&", "&amp;")}"`);

    // The reusing run's report shows the stills its steps' maker captured.
    const reused = inputsOf(await jsonReport(p, again));
    expect(reused.map((input) => [input.captured, input.local, input.producedBy, input.path])).toEqual(
      inputs.map((input) => [true, true, runId, input.path]),
    );

    // Not outputs: the steps' records and files are their videos only.
    const store = p.store();
    for (const step of store.getSteps(runId)) expect(Object.keys(step.files ?? {})).toEqual(["video"]);
    expect(store.getOutputs(runId).every((output) => output.name === "video")).toBe(true);
  });

  test("a capture that fails (404, an HTML page, over the cap or RUNFLOW_MAX_DOWNLOAD_MB) leaves its step succeeded and its tile not captured, saying why", async () => {
    const p = await project({
      "stills.yaml": stillsYaml(),
      "items.csv": itemsCsv([{ still: SMALL }, { still: OTHER }]),
    });
    // The host answers the probes (ranged) but not the whole files: one 404, one login page.
    p.api.configure({
      faults: [
        { endpoint: "media", kind: "404", ranged: false, times: 1 },
        { endpoint: "media", kind: "html-page", ranged: false, times: 1 },
      ],
    });
    const first = await applied(p);
    const firstInputs = inputsOf(await jsonReport(p, first));
    expect(firstInputs.map((input) => input.captured)).toEqual([false, false]);
    expect(firstInputs.map((input) => input.captureError).sort()).toEqual([
      expect.stringContaining("HTTP 404"),
      expect.stringContaining("text/html"),
    ]);

    // A still above the cap is refused without reading it.
    p.api.configure({ faults: [] });
    writeFileSync(path.join(p.dir, "items.csv"), itemsCsv([{ still: LARGE, prompt: "large" }]));
    const second = await applied(p);
    const [large] = inputsOf(await jsonReport(p, second));
    expect(large).toMatchObject({ captured: false, local: false });
    expect(large?.captureError).toContain("larger than the 20000000 bytes allowed");

    // A lower RUNFLOW_MAX_DOWNLOAD_MB lowers the capture's cap too.
    writeFileSync(
      path.join(p.dir, "items.csv"),
      itemsCsv([{ still: `${SMALL}&bytes=600000`, prompt: "capped" }]),
    );
    const third = await applied(p, [], { RUNFLOW_MAX_DOWNLOAD_MB: "0.5" });
    const [capped] = inputsOf(await jsonReport(p, third));
    expect(capped?.captureError).toContain("larger than the 500000 bytes allowed");

    const store = p.store();
    for (const runId of [first, second, third]) {
      for (const step of store.getSteps(runId)) expect(step.state).toBe("succeeded");
    }
    expect(filesUnder(path.join(p.dir, "outputs")).filter((file) => file.includes(".inputs"))).toEqual([]);

    const html = await p.run(["report", first, "--out", "night.html"]);
    expect(html.exitCode).toBe(0);
    const page = readFileSync(path.join(p.dir, "night.html"), "utf8");
    expect(page.match(/remote, not captured: [^<]*HTTP 404/g)).toHaveLength(1);
    expect(page.match(/remote, not captured: [^<]*text\/html/g)).toHaveLength(1);
    expect(page).not.toMatch(/src="https?:/);
  });

  test("--no-download captures nothing", async () => {
    const p = await project({ "stills.yaml": stillsYaml(), "items.csv": itemsCsv([{ still: SMALL }]) });
    const runId = await applied(p, ["--no-download"]);
    expect(wholeFileGets(p.api.requestLog())).toEqual([]);
    expect(p.store().getInputCaptures([runId])).toEqual([]);
    const [still] = inputsOf(await jsonReport(p, runId));
    expect(still?.captured).toBe(false);
    expect(still?.captureError).toBeUndefined();
  });

  test("a capture that hangs does not hold the submission back", async () => {
    const p = await project({
      "stills.yaml": stillsYaml(),
      "items.csv": itemsCsv([{ still: SMALL, prompt: "held [emulator:hold]" }]),
    });
    // The whole-file download of the still hangs (headers and half the file, then nothing).
    p.api.configure({ faults: [{ endpoint: "media", kind: "stall", ranged: false, times: 1 }] });
    const child = p.start(["apply", "stills.yaml", "--json"]);
    const captureStarted = () => wholeFileGets(p.api.requestLog()).length === 1;
    await until("the capture to start and the request to be submitted and held", () => {
      return captureStarted() && p.api.state().held === 1;
    });
    // Submitted while the capture still hangs: nothing about it is recorded yet.
    const runId = p.api.submissions().total === 1 ? readRunId(p) : undefined;
    expect(runId).toBeDefined();
    expect(p.store().getInputCaptures([runId as string])).toEqual([]);
    p.api.release();
    const result = await child;
    expect(result.exitCode).toBe(0);
    // The hung try was given up and the second one captured it, the run waiting for it.
    const [capture] = p.store().getInputCaptures([runId as string]);
    expect(capture?.path).toBeDefined();
    expect(existsSync(capture?.path as string)).toBe(true);
  }, 90_000);
});

describe("a capture cut by a SIGKILL", () => {
  test("leaves a part that the run collecting the step's request removes", async () => {
    const p = await project({
      "stills.yaml": stillsYaml(),
      "items.csv": itemsCsv([{ still: SMALL, prompt: "held [emulator:hold]" }]),
    });
    p.api.configure({ faults: [{ endpoint: "media", kind: "stall", ranged: false, times: 1 }] });
    const child = p.start(["apply", "stills.yaml"]);
    const captureParts = () =>
      existsSync(path.join(p.dir, "outputs"))
        ? filesUnder(path.join(p.dir, "outputs")).filter((file) =>
            /\.inputs[\\/][^\\/]+\.part-[0-9a-f]{12}$/.test(file),
          )
        : [];
    // The request's id recorded too: killed between its POST and that commit, the step would
    // be `unknown` (maybe billed, never sent again) instead of collected.
    await until("the hung capture's part and the held request, its id recorded", () => {
      return captureParts().length === 1 && p.api.state().held === 1 && recordedRequests(p.dir) === 1;
    });
    child.kill("SIGKILL");
    await child;
    expect(captureParts()).toHaveLength(1);

    p.api.release();
    const second = await p.run(["apply", "stills.yaml", "--json"]);
    expect(second.exitCode).toBe(0);
    // Collected, not submitted again; the part is gone and the new run captured the still.
    expect(p.api.submissions().total).toBe(1);
    expect(captureParts()).toEqual([]);
    const runId = String(ndjson(second.stdout)[0]?.runId);
    expect(p.store().getInputCaptures([runId])[0]?.path).toBeDefined();
  });
});

/** The id of the project's one run, read from its state. */
function readRunId(p: Project): string | undefined {
  return p.store().listRuns({ limit: 1 })[0]?.id;
}
