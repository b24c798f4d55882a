import { describe, expect, test } from "vitest";
import { itemsCsv, project } from "./apply-harness.js";

const WORKFLOW = `version: 1
name: studio
defaults:
  retry: { attempts: 1 }
  poll: { interval: 25ms, max_interval: 250ms }
vars:
  media: "{{API}}"
jobs:
  solo:
    for_each: [{ id: a }, { id: b }, { id: c }]
    steps:
      - id: still
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "solo \${{ item.id }}"
          image_url: "\${{ vars.media }}/media/image.png?w=640&h=480"
  clip:
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
          prompt: "watercolor"
          video_url: "\${{ steps.animate.output.video }}"
          ratio: "1280:720"
`;

/** Addresses of the bodies submitted since `before` submissions, by model. */
function newSubmissionsByModel(
  p: Awaited<ReturnType<typeof project>>,
  before: Record<string, number>,
): Record<string, number> {
  const now = p.api.submissions().byModel;
  const added: Record<string, number> = {};
  for (const [model, count] of Object.entries(now)) {
    const delta = count - (before[model] ?? 0);
    if (delta > 0) added[model] = delta;
  }
  return added;
}

const HAILUO = "minimax/Hailuo Video 01 Live";
const ALEPH = "runwayml/runway-aleph/video-to-video";

describe("runflow retry", () => {
  test("after remote failures (exit 1), retry submits exactly the failed steps and their dependents", async () => {
    const p = await project({ "studio.yaml": WORKFLOW, "items.csv": itemsCsv(3) });
    expect((await p.run(["apply", "studio.yaml", "--only", "solo"])).exitCode).toBe(0);

    p.api.configure({ failRate: 1 });
    const failed = await p.run(["apply", "studio.yaml"]);
    expect(failed.exitCode).toBe(1);
    expect(failed.stdout).toMatch(/3 reused, 6 failed \(3 blocked\)/);
    expect(failed.stdout).toMatch(/clip\/item-1\/animate failed: /);
    const runId = /to retry: runflow retry (\S+)/.exec(failed.stdout)?.[1];
    expect(runId).toBeDefined();

    p.api.configure({ failRate: 0 });
    let before = { ...p.api.submissions().byModel };
    const narrowed = await p.run(["retry", runId!, "--step", "clip/item-1"]);
    expect(narrowed.exitCode).toBe(0);
    expect(narrowed.stdout).toMatch(/2 steps: 2 succeeded/);
    expect(newSubmissionsByModel(p, before)).toEqual({ [HAILUO]: 1, [ALEPH]: 1 });

    before = { ...p.api.submissions().byModel };
    const rest = await p.run(["retry", runId!]);
    expect(rest.exitCode).toBe(0);
    // item-1 succeeded in the narrowed retry: reused now, not submitted again.
    expect(rest.stdout).toMatch(/6 steps: 4 succeeded, 2 reused/);
    expect(newSubmissionsByModel(p, before)).toEqual({ [HAILUO]: 2, [ALEPH]: 2 });

    const store = p.store();
    const latest = store.latestRun()!;
    expect(latest).toMatchObject({ kind: "retry", parentRunId: runId, status: "succeeded" });

    const nothing = await p.run(["retry"]);
    expect(nothing.exitCode).toBe(0);
    expect(nothing.stdout).toContain("nothing to retry");
  });

  test("retry leaves `unknown` steps alone unless --resubmit-unknown", async () => {
    const p = await project({ "studio.yaml": WORKFLOW, "items.csv": itemsCsv(1) });
    p.api.configure({ faults: [{ endpoint: "submit", kind: "502", times: 1 }] });
    const first = await p.run(["apply", "studio.yaml", "--only", "solo/still"]);
    expect(first.exitCode).toBe(1);
    expect(first.stdout).toMatch(/2 succeeded, 1 failed \(1 unknown\)/);
    const before = p.api.submissions().total;

    const plain = await p.run(["retry"]);
    expect(plain.stdout).toContain("nothing to retry");
    expect(p.api.submissions().total).toBe(before);

    const resubmitted = await p.run(["retry", "--resubmit-unknown"]);
    expect(resubmitted.exitCode).toBe(0);
    expect(p.api.submissions().total).toBe(before + 1);
  });
});
