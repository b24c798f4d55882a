/**
 * Items a batch must not be run with, through the built CLI's `apply` against an emulator:
 * the workflow is refused at the bad row (exit 2) and the API sees no request at all.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { chainYaml, project } from "./apply-harness.js";

describe("apply refuses items that would submit something nobody meant", () => {
  test("a CSV row that is only a comma: exit 2 at its line, nothing submitted", async () => {
    const p = await project({
      "flow.yaml": chainYaml(),
      "items.csv": 'id,prompt\nitem-1,"a paper boat"\n,\n',
    });
    const result = await p.run(["apply", "flow.yaml"]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr).toContain("items.csv:3:1: row 2 is empty: every field of it is empty");
    expect(p.api.submissions().total).toBe(0);
  });

  test("a Latin-1 CSV (`café` as the byte 0xE9): exit 2 at the byte, nothing submitted", async () => {
    const p = await project({ "flow.yaml": chainYaml(), "items.csv": "" });
    writeFileSync(
      path.join(p.dir, "items.csv"),
      Buffer.concat([Buffer.from('id,prompt\nitem-1,"un caf'), Buffer.from([0xe9]), Buffer.from('"\n')]),
    );
    const result = await p.run(["apply", "flow.yaml"]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr).toContain("items.csv:2:15: items file");
    expect(result.stderr).toContain("is not UTF-8 text");
    expect(p.api.submissions().total).toBe(0);
  });
});
