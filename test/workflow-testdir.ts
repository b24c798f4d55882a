/**
 * Fixture folders declared inline: `testdir({ "flow.yaml": "…", "items/a.csv": "…" })`
 * writes them under a fresh temp folder and returns its path. Removed after the test file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { loadModelRegistry } from "../src/models/registry.js";
import { checkWorkflow, loadWorkflow, type LoadWorkflowOptions } from "../src/workflow/load.js";

const created: string[] = [];
afterAll(() => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function testdir(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-workflow-"));
  created.push(dir);
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  return dir;
}

export const registry = loadModelRegistry();

export const HAILUO = "minimax/Hailuo Video 01 Live";
export const ALEPH = "runwayml/runway-aleph/video-to-video";

/** Every diagnostic of `text` (written as flow.yaml beside `files`), as `line:column: message`. */
export async function problemsOf(
  text: string,
  files: Record<string, string | Uint8Array> = {},
  options: Partial<LoadWorkflowOptions> = {},
): Promise<string[]> {
  const dir = testdir({ "flow.yaml": text, ...files });
  const check = await checkWorkflow(path.join(dir, "flow.yaml"), { registry, env: {}, ...options });
  return check.diagnostics.map((d) => {
    const where = d.location
      ? `${d.location.file === path.join(dir, "flow.yaml") ? "" : `${path.relative(dir, d.location.file)}:`}${d.location.line}:${d.location.column}`
      : "-";
    return `${where}: ${d.message}`;
  });
}

/** Loads `text` as flow.yaml beside `files`; throws when it is invalid. */
export async function load(
  text: string,
  files: Record<string, string | Uint8Array> = {},
  options: Partial<LoadWorkflowOptions> = {},
) {
  const dir = testdir({ "flow.yaml": text, ...files });
  return loadWorkflow(path.join(dir, "flow.yaml"), { registry, env: {}, ...options });
}

/** A minimal valid two-step chain over inline items, for tests to vary. */
export const CHAIN = `version: 1
name: chain
vars:
  style: noir
jobs:
  teaser:
    for_each:
      - { id: cat, prompt: "a cat", image: "https://example.com/cat.png" }
      - { id: dog, prompt: "a dog", image: "https://example.com/dog.png" }
    steps:
      - id: animate
        model: ${HAILUO}
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ item.image }}"
      - id: restyle
        model: ${ALEPH}
        input:
          prompt: "\${{ vars.style }}"
          video_url: "\${{ steps.animate.output.video }}"
`;
