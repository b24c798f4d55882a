// Benchmark: validate + plan a 100,000-row CSV workflow with a two-step chain
// (Hailuo image-to-video → Aleph restyle). Targets: < 5 s wall, < 500 MB peak RSS.
// Run after a build: `npx tsc -p tsconfig.build.json && node bench/validate-plan.js [rows]`.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { loadModelRegistry } from "../dist/models/index.js";
import { emptyPriorState, planRun } from "../dist/plan/index.js";
import { loadWorkflow } from "../dist/workflow/index.js";

const rows = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(path.join(tmpdir(), "runflow-bench-"));

const workflow = `version: 1
name: bench
vars:
  style: "cinematic teal-and-orange grade, 35mm film grain"
jobs:
  teaser:
    for_each: items.csv
    key: "\${{ item.id }}"
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ item.image }}"
      - id: restyle
        model: runwayml/runway-aleph/video-to-video
        input:
          prompt: "\${{ vars.style }}"
          video_url: "\${{ steps.animate.output.video }}"
          ratio: "1280:720"
`;
const lines = ["id,prompt,image"];
for (let row = 1; row <= rows; row++) {
  lines.push(
    `item-${row},"Shot ${row}: a paper boat drifts down a rain-soaked street, ""golden hour"", slow dolly",https://images.example.com/stills/${row}.png`,
  );
}
writeFileSync(path.join(dir, "bench.yaml"), workflow);
writeFileSync(path.join(dir, "items.csv"), `${lines.join("\n")}\n`);

try {
  const registry = loadModelRegistry();
  const started = performance.now();
  const loaded = await loadWorkflow(path.join(dir, "bench.yaml"), { registry, env: {} });
  const validated = performance.now();
  const plan = planRun(loaded, emptyPriorState, { runId: "bench", now: Date.now() });
  const planned = performance.now();
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  const result = {
    rows,
    steps: plan.counts.total,
    counts: plan.counts,
    validateMs: Math.round(validated - started),
    planMs: Math.round(planned - validated),
    totalMs: Math.round(planned - started),
    peakRssMb: Math.round(maxRssMb),
    targets: { totalMs: 5_000, peakRssMb: 500 },
  };
  console.log(JSON.stringify(result, null, 2));
  if (result.totalMs >= 5_000 || result.peakRssMb >= 500) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
