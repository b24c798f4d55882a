import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { apply, chainWorkflow, emulator, items, openStore, tempDir, writeFiles } from "./engine-harness.js";

describe("apply: a two-step chain", () => {
  test("runs every step, downloads every output, and a second apply submits nothing", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(5), mediaBase: api.url }) });

    const first = await apply(dir, "chain.yaml", api);
    expect(first.exitCode).toBe(0);
    expect(first.counts).toEqual({ succeeded: 10 });
    expect(api.submissions().total).toBe(10);
    for (const group of api.submissions().byBody) expect(group.count).toBe(1);
    const video = path.join(dir, "outputs", "chain", "item-3", "restyle.mp4");
    expect(statSync(video).size).toBe(2015);

    const second = await apply(dir, "chain.yaml", api);
    expect(second.exitCode).toBe(0);
    expect(second.counts).toEqual({ reused: 10 });
    expect(api.submissions().total).toBe(10);
    expect(existsSync(video)).toBe(true);
    const store = openStore(dir);
    expect(store.getOutputs(second.runId).length).toBe(10);
  });
});
