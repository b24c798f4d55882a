/**
 * What `apply` prints without a terminal, pinned as snapshots: the plain lines cron mails and
 * the NDJSON a log shipper reads (SPEC §6). The run is one job whose steps run one after
 * the other (so the order of lines is fixed): a success, a remote failure, a blocked
 * dependent. Times, run ids, request ids, ports and temp folders are normalized; everything
 * else must stay exactly as it is, or the snapshot is updated on purpose (`vitest -u`).
 */
import { describe, expect, test } from "vitest";
import { project, type Project } from "./apply-harness.js";

const WORKFLOW = `version: 1
name: snap
concurrency: 1
defaults:
  retry: { attempts: 1 }
  poll: { interval: 25ms, max_interval: 250ms }
jobs:
  clip:
    for_each:
      - { id: boat, prompt: "a paper boat drifts down a rainy street" }
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "{{API}}/media/image.png?w=640&h=480"
      - id: restyle
        model: runwayml/runway-aleph/video-to-video
        input:
          prompt: "watercolor [emulator:fail=GPU out of memory]"
          video_url: "\${{ steps.animate.output.video }}"
          ratio: "1280:720"
      - id: poster
        run: [ffmpeg, -y, -i, "\${{ steps.restyle.files.video }}", -frames:v, "1", poster.jpg]
`;

function normalize(text: string, flow: Project): string {
  return text
    .replaceAll(flow.api.url, "<api>")
    .replaceAll(flow.dir, "<dir>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
    .replace(/\b\d{8}-\d{6}-[0-9a-f]{4}\b/g, "<run>")
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, "<request>")
    .replace(/"(at|elapsedMs|typicalMs|since)":\d+/g, '"$1":0')
    .replace(/ in [\d.hms]+ — /g, " in <elapsed> — ");
}

async function applyOnce(args: string[]): Promise<{ stdout: string; exitCode: number | undefined }> {
  // Duration 0: every request is done at its first poll, so no in_queue/in_progress timing shows.
  const flow = await project({ "flow.yaml": WORKFLOW }, { duration: 0 });
  const result = await flow.run(["apply", "flow.yaml", ...args]);
  expect(result.stderr).toBe("");
  return { stdout: normalize(result.stdout, flow), exitCode: result.exitCode };
}

describe("apply's output without a terminal", () => {
  test("plain lines: one timestamped line per state change, no ANSI, then the summary", async () => {
    const { stdout, exitCode } = await applyOnce([]);
    expect(exitCode).toBe(1);
    expect(stdout).not.toContain("\u001b");
    expect(stdout).toMatchSnapshot();
  });

  test("--json: NDJSON only, run_started first and run_finished last", async () => {
    const { stdout, exitCode } = await applyOnce(["--json"]);
    expect(exitCode).toBe(1);
    const events = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { event: string });
    expect(events[0]?.event).toBe("run_started");
    expect(events.at(-1)?.event).toBe("run_finished");
    expect(stdout).toMatchSnapshot();
  });

  test("--quiet: the summary alone", async () => {
    const { stdout, exitCode } = await applyOnce(["--quiet"]);
    expect(exitCode).toBe(1);
    expect(stdout).toMatchSnapshot();
  });
});
