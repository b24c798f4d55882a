/**
 * A hostile world seen by `runflow apply` end to end (issue 16): the API's answers, the file
 * host and item data never decide where runflow writes, nor get a damaged file recorded as
 * complete. The built CLI runs against the emulator's fault modes.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { filesUnder, ndjson, project } from "./apply-harness.js";

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

    const stepFolder = path.join(p.dir, "outputs", "hostile", "item-1");
    // Nothing outside the step's folder but the project's own files and state.
    const outside = filesUnder(p.dir).filter(
      (file) => !file.startsWith(stepFolder + path.sep) && !file.startsWith(path.join(p.dir, "state")),
    );
    expect(outside.map((file) => path.relative(p.dir, file)).sort()).toEqual(["hostile.yaml", "items.csv"]);
    expect(existsSync(path.join(p.dir, "victim"))).toBe(false);
    expect(existsSync("/tmp/runflow-hostile-absolute.mp4")).toBe(false);
    expect(readdirSync(stepFolder).sort()).toEqual([
      "animate-output.mp4",
      "animate-proto.mp4",
      "animate-tmp_runflow-hostile-absolute.mp4",
      "animate-victim_app.mp4",
      "animate-video.mp4",
      "animate-windows.mp4",
    ]);

    const runId = String(ndjson(result.stdout)[0]?.runId);
    const rows = p.store().getOutputs(runId);
    expect(rows).toHaveLength(6);
    for (const row of rows) {
      expect(path.dirname(row.path!)).toBe(stepFolder);
      expect(row.bytes).toBe(2015);
    }
  });
});
